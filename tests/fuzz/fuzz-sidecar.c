/*
 * Fuzzes an upload's sidecar "<file>.json" as custosd reads it. The reading
 * is static in daemon/custosd.c (load_sidecar, then the field extraction in
 * secure_file), so this is a line-for-line copy of those steps: keep it in
 * step with them. Whatever the sidecar holds, the metadata either passes
 * cs_meta_check or is dropped; a sidecar never stops a file being secured.
 */
#include <errno.h>
#include <jansson.h>
#include <string.h>

#include "custos/error.h"
#include "custos/store.h"
#include "fuzz.h"
#include "record.h"

#define SIDECAR_MAX (1 << 16) /* load_sidecar: cs_source_open(dirfd, path, 1 << 16, &sb) */

/* load_sidecar, after the read. */
static json_t *
load_sidecar(const char *buf, size_t n, char *err, size_t errn)
{
	json_error_t jerr;
	json_t *j;

	j = json_loadb(buf, n, JSON_REJECT_DUPLICATES, &jerr);
	if (j == NULL || !json_is_object(j)) {
		snprintf(err, errn, "line %d: %s", jerr.line,
		    j == NULL ? jerr.text : "not a JSON object");
		json_decref(j);
		return NULL;
	}
	return j;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char sidecar_error[256] = "";
	const char *officers[64];
	struct cs_meta m = {0};
	json_t *side, *v, *o = NULL;
	size_t i;

	if (size > SIDECAR_MAX)
		return 0;
	side = load_sidecar((const char *)data, size, sidecar_error, sizeof(sidecar_error));
	m.source = "inbox";
	m.officers = officers;
	if (side != NULL) {
		/* secure_file */
		m.case_no = json_string_value(json_object_get(side, "case"));
		m.category = json_string_value(json_object_get(side, "category"));
		m.stage = json_string_value(json_object_get(side, "stage"));
		m.device = json_string_value(json_object_get(side, "device"));
		m.recorded_start = json_string_value(json_object_get(side, "recorded_start"));
		m.recorded_end = json_string_value(json_object_get(side, "recorded_end"));
		json_array_foreach(json_object_get(side, "officers"), i, v)
		{
			if (m.n_officers < 64 && json_string_value(v) != NULL)
				officers[m.n_officers++] = json_string_value(v);
		}
		{
			const char *field = NULL;
			if (cs_meta_check(&m, &field) < 0) {
				CHECK(field != NULL);
				snprintf(sidecar_error, sizeof(sidecar_error),
				    "field '%s' is invalid", field);
				memset(&m, 0, sizeof(m));
				m.source = "inbox";
			}
		}
	} else {
		CHECK(sidecar_error[0] != '\0');
	}
	/* What cs_store_ingest_fd does first: it must accept the metadata now. */
	CHECK(cs__meta_json(&m, &o, NULL) == 0);
	{
		char *dump = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
		CHECK(dump != NULL);
		free(dump);
	}
	json_decref(o);
	json_decref(side);
	return 0;
}
