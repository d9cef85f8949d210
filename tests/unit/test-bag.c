/*
 * Unit tests of the pure parts of exports: the CSV writer (quoting and the
 * neutralised formula cells of custos/csv.h), a bag's payload file names
 * and the manifest lines verify-bag accepts (custos/bag.h).
 */
#include <stdlib.h>
#include <string.h>

#include "custos/bag.h"
#include "custos/csv.h"
#include "custos/error.h"
#include "tap.h"

static void
csv_is(const char *const *f, size_t n, const char *want, const char *what)
{
	char *got = cs_csv_record(f, n);

	if (!ok(got != NULL && strcmp(got, want) == 0, "csv: %s", what))
		printf("#   got [%s], want [%s]\n", got != NULL ? got : "(null)", want);
	free(got);
}

static void
test_csv(void)
{
	const char *plain[] = {"a", NULL, "平司罚〔2020〕1号"};
	const char *quoted[] = {"a,b", "say \"hi\"", " x", "line\nbreak"};
	const char *formula[] = {"=1+2", "+1", "-2", "@SUM(A1)", "\tx", "\rx", "a=b", "=a,b"};

	csv_is(plain, 3, "a,,平司罚〔2020〕1号\r\n", "plain fields, a NULL one empty");
	csv_is(quoted, 4, "\"a,b\",\"say \"\"hi\"\"\",\" x\",\"line\nbreak\"\r\n",
	    "commas, quotes, spaces and line breaks quoted");
	csv_is(formula, 8, "'=1+2,'+1,'-2,'@SUM(A1),'\tx,\"'\rx\",a=b,\"'=a,b\"\r\n",
	    "cells starting = + - @ TAB CR get an apostrophe, inside the quotes");
	ok(cs_csv_formula("=x") && cs_csv_formula("\r") && !cs_csv_formula("") &&
	        !cs_csv_formula(NULL) && !cs_csv_formula("x=") && !cs_csv_formula("'=x"),
	    "csv: cs_csv_formula");
}

static void
name_is(const char *name, const char *want)
{
	char out[96];

	cs_bag_file_name("AC-0123456789abcdef0123", name, out, sizeof(out));
	if (!ok(strcmp(out, want) == 0, "file name of [%.*s]", (int)strcspn(name ? name : "", "\n"),
	        name != NULL ? name : ""))
		printf("#   got [%s], want [%s]\n", out, want);
}

static void
test_names(void)
{
	name_is("clip.MP4", "AC-0123456789abcdef0123.mp4");
	name_is("a.b.wav", "AC-0123456789abcdef0123.wav");
	name_is(NULL, "AC-0123456789abcdef0123");
	name_is("noext", "AC-0123456789abcdef0123");
	name_is("x.", "AC-0123456789abcdef0123");
	name_is("x./../../etc", "AC-0123456789abcdef0123");
	name_is("x.m p4", "AC-0123456789abcdef0123");
	name_is("x.toolongext", "AC-0123456789abcdef0123");
	name_is("录像.视频", "AC-0123456789abcdef0123");
	name_is("x.mp4\n", "AC-0123456789abcdef0123");
}

static void
test_manifest(void)
{
	static const char hex[] =
	    "98ea6e4f216f2fb4b69fff9b3a44842c38686ca685f3f55dc48c5d3fb1107be4";
	static const char *const good[] = {"  data/a.mp4", "\tdata/x", " records/x.json"};
	static const char *const bad[] = {"  /etc/passwd", "  data/../x", "  ../x", "  data//x",
	    "  ./x", "  data\\x", "", "data/x", "  "};
	char line[200];
	const char *h, *p;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		snprintf(line, sizeof(line), "%s%s", hex, good[i]);
		ok(cs_bag_manifest_line(line, &h, &p) == 0 && strcmp(h, hex) == 0 &&
		        strcmp(p, good[i] + strspn(good[i], " \t")) == 0,
		    "manifest line %zu accepted", i);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(line, sizeof(line), "%s%s", hex, bad[i]);
		ok(cs_bag_manifest_line(line, &h, &p) == CS_EFORMAT, "manifest line [%s] refused",
		    bad[i]);
	}
	snprintf(line, sizeof(line), "%.63sg  data/x", hex);
	ok(cs_bag_manifest_line(line, &h, &p) == CS_EFORMAT, "a digest that is not hex refused");
}

int
main(void)
{
	test_csv();
	test_names();
	test_manifest();
	return tap_done();
}
