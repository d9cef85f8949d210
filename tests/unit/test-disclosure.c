/*
 * The withdrawal date's calendar (custos/disclosure.h): N calendar years in
 * China Standard Time, the same date and time of day; a 29 February with no
 * 29 February in the target year gives the 28th (民法典 art. 202), the
 * century rule of leap years holds, and a date past 9999 is refused.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "custos/disclosure.h"
#include "custos/error.h"
#include "tap.h"
#include "util.h"

/* from + years == want (RFC 3339 times), printed when not. */
static int
adds(const char *from, unsigned years, const char *want)
{
	int64_t f, w, got = 0;
	char buf[32];
	int rc;

	if (cs__time_parse(from, &f) < 0 || cs__time_parse(want, &w) < 0)
		return 0;
	rc = cs_disclosure_add_years(f, years, &got);
	if (rc == 0 && got == w)
		return 1;
	cs__time_format(got, buf, sizeof(buf));
	printf("#   %s + %uy: rc %d, got %s, want %s\n", from, years, rc, buf, want);
	return 0;
}

int
main(void)
{
	int64_t ms, out;

	ok(adds("2024-03-01T00:00:00+08:00", 2, "2026-03-01T00:00:00+08:00"),
	    "a natural person's 2 years: the same date and time");
	ok(adds("2024-03-01T00:00:00+08:00", 5, "2029-03-01T00:00:00+08:00"),
	    "an organisation's 5 years");
	ok(adds("2024-02-29T00:00:00+08:00", 2, "2026-02-28T00:00:00+08:00"),
	    "published 2024-02-29 + 2y: 2026-02-28 (no 29 February in 2026)");
	ok(adds("2024-02-29T09:30:15.250+08:00", 5, "2029-02-28T09:30:15.250+08:00"),
	    "2024-02-29 + 5y: 2029-02-28, the time of day kept to the millisecond");
	ok(adds("2024-02-29T12:00:00+08:00", 4, "2028-02-29T12:00:00+08:00"),
	    "2024-02-29 + 4y: 2028-02-29 (a leap year)");
	ok(adds("2024-02-28T20:00:00Z", 2, "2026-02-27T20:00:00Z"),
	    "the date is China's: 2024-02-28T20:00Z is 29 February in UTC+08:00");
	ok(adds("2024-02-29T20:00:00Z", 2, "2026-02-28T20:00:00Z"),
	    "2024-02-29T20:00Z is 1 March in UTC+08:00: 1 March again");
	ok(adds("2023-12-31T23:59:59.999+08:00", 2, "2025-12-31T23:59:59.999+08:00"),
	    "the last millisecond of a year");
	ok(adds("2000-02-29T00:00:00+08:00", 100, "2100-02-28T00:00:00+08:00"),
	    "2100 is not a leap year");
	ok(adds("2000-02-29T00:00:00+08:00", 400, "2400-02-29T00:00:00+08:00"),
	    "2400 is one");
	ok(adds("1970-01-01T00:00:00Z", 0, "1970-01-01T00:00:00Z"), "0 years: the same time");
	ok(cs__time_parse("9998-06-01T00:00:00Z", &ms) == 0 &&
	        cs_disclosure_add_years(ms, 2, &out) == CS_EFORMAT,
	    "a date past the year 9999 is refused");
	return tap_done();
}
