/* A very small table-driven test harness. Each test file defines its test
 * functions and calls them from main() through RUN(); the run ends with the
 * summary line "N passed, N failed" that tests/tools/run-all adds up. */
#ifndef POSTERN_TEST_HARNESS_H
#define POSTERN_TEST_HARNESS_H

#include <stdio.h>
#include <string.h>

static int harness_failed_checks;
static int harness_passed, harness_failed;

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "  %s:%d: CHECK failed: %s\n",        \
				__FILE__, __LINE__, #cond);                    \
			harness_failed_checks++;                               \
		}                                                              \
	} while (0)

#define CHECK_STR(a, b)                                                        \
	do {                                                                   \
		const char *ca_ = (a), *cb_ = (b);                             \
		if (ca_ == NULL || cb_ == NULL || strcmp(ca_, cb_) != 0) {     \
			fprintf(stderr, "  %s:%d: \"%s\" != \"%s\"\n",         \
				__FILE__, __LINE__, ca_ ? ca_ : "(null)",      \
				cb_ ? cb_ : "(null)");                         \
			harness_failed_checks++;                               \
		}                                                              \
	} while (0)

/* Runs one test function and records it as passed or failed. */
#define RUN(fn)                                                                \
	do {                                                                   \
		int before_ = harness_failed_checks;                           \
		fn();                                                          \
		if (harness_failed_checks == before_) {                        \
			harness_passed++;                                      \
			printf("ok - %s\n", #fn);                              \
		} else {                                                       \
			harness_failed++;                                      \
			printf("not ok - %s\n", #fn);                          \
		}                                                              \
	} while (0)

/* Prints the summary line; use as the return value of main(). */
#define HARNESS_DONE()                                                         \
	(printf("%d passed, %d failed\n", harness_passed, harness_failed),     \
	 harness_failed ? 1 : 0)

#endif
