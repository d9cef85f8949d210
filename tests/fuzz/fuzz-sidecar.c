/*
 * Fuzzes an upload's sidecar "<file>.json" as lib's secure transaction
 * reads it (cs_secure, for custosd's upload directories): parsed by
 * cs_sidecar_parse, its fields taken by cs_meta_from_sidecar. Whatever the sidecar holds, the good fields pass
 * cs_meta_check, every field or key left out is named, and a sidecar never
 * stops a file being secured: nothing but a lack of memory fails.
 */
#include <errno.h>
#include <jansson.h>
#include <string.h>

#include "custos/error.h"
#include "custos/store.h"
#include "fuzz.h"
#include "record.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char sidecar_error[1024] = "";
	const char *officers[64];
	struct cs_meta m = {0};
	json_t *side, *o = NULL;

	if (size > CS_SIDECAR_MAX)
		return 0;
	/* bad input is never a lack of memory */
	CHECK(cs_sidecar_parse((const char *)data, size, &side, sidecar_error,
	          sizeof(sidecar_error)) == 0);
	m.source = "inbox";
	m.officers = officers;
	if (side != NULL) {
		CHECK(cs_meta_from_sidecar(side, &m, officers, sidecar_error,
		          sizeof(sidecar_error)) == 0);
		/* A key that is not a field, or a field of the wrong type, is named. */
		if (json_object_size(side) > 0 && m.case_no == NULL && m.category == NULL &&
		    m.stage == NULL && m.device == NULL && m.recorded_start == NULL &&
		    m.recorded_end == NULL && m.n_officers == 0)
			CHECK(sidecar_error[0] != '\0' || json_is_array(json_object_get(side, "officers")));
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
