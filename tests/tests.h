// tests.h -- one Check suite per module, all run by tests/test_main.c.
#ifndef GPT_TESTS_H
#define GPT_TESTS_H

#include <check.h>

Suite *layers_suite(void);
Suite *ops_suite(void);
Suite *gemm_suite(void);
Suite *gpt_suite(void);
Suite *tokenizer_suite(void);
Suite *checkpoint_suite(void);
Suite *report_suite(void);
Suite *generate_suite(void);
Suite *train_suite(void);
Suite *parity_suite(void);
Suite *export_suite(void);
Suite *bf16_suite(void);
Suite *data_suite(void);
Suite *eval_suite(void);
Suite *muon_suite(void);
Suite *qk_suite(void);

#endif
