// The one Check runner: every suite, Check's summary line, non-zero exit on any failure.
// Tests run in forked children (Check's default), so the runner's parent never starts an
// OpenMP thread pool before it forks. Check's own CK_RUN_SUITE=name / CK_RUN_CASE=name
// select a part of the suite.
#include <stdlib.h>

#include "tests/tests.h"

int main(void) {
    Suite *(*suites[])(void) = {layers_suite,     ops_suite,    gemm_suite,    gpt_suite,      tokenizer_suite,
                                checkpoint_suite, report_suite, train_suite,   generate_suite, parity_suite,
                                export_suite,     bf16_suite,   data_suite,    eval_suite,     muon_suite,
                                qk_suite};
    SRunner *sr = srunner_create(NULL);
    for (size_t i = 0; i < sizeof suites / sizeof suites[0]; i++) srunner_add_suite(sr, suites[i]());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
