// test_checkpoint.c -- the checkpoint suite: save/load round trips with and without training
// state, every way a file can be damaged (truncated at every length, every single bit
// flipped, sections malformed behind a valid checksum), atomic saving when the write fails,
// and the `gpt info` command.
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "checkpoint/checkpoint.h"
#include "cli/commands.h"
#include "common/buf.h"
#include "common/common.h"
#include "model/gpt.h"
#include "tests/test_util.h"
#include "tests/tests.h"
#include "tokenizer/tokenizer.h"
#include "train/adamw.h"
#include "train/train_state.h"

// The format's constants, as documented at the top of checkpoint/checkpoint.c. The tests poke at
// the bytes of real files, so they spell the layout out themselves.
#define HEADER_BYTES 12  // "GPTCKPT\0" + u32 version
#define FIXED_BYTES 16   // header + u32 CRC trailer
#define TAG(s) ((uint32_t)(unsigned char)(s)[0] | (uint32_t)(unsigned char)(s)[1] << 8 | \
                (uint32_t)(unsigned char)(s)[2] << 16 | (uint32_t)(unsigned char)(s)[3] << 24)

// ---------------------------------------------------------------------------------------------
// Helpers.

typedef struct {
    char dir[64];
} TempDir;

static void temp_dir(TempDir *td) {
    memset(td, 0, sizeof *td);
    snprintf(td->dir, sizeof td->dir, "/tmp/gpt_ckpt_test_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(td->dir));
}

// dir/name, in one of eight buffers used round robin (so a few can be alive at once).
static const char *temp_path(const TempDir *td, const char *name) {
    static char paths[8][160];
    static int next;
    char *p = paths[next++ % 8];
    snprintf(p, sizeof paths[0], "%s/%s", td->dir, name);
    return p;
}

// The names in a directory (without . and ..), one string, space separated.
static int dir_list(const char *dir, char *names, size_t cap) {
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    names[0] = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        size_t k = strlen(names);
        snprintf(names + k, cap - k, "%s%s", n ? " " : "", e->d_name);
        n++;
    }
    closedir(d);
    return n;
}

static void temp_cleanup(TempDir *td) {
    DIR *d = opendir(td->dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char p[sizeof td->dir + sizeof e->d_name + 1];
        snprintf(p, sizeof p, "%s/%s", td->dir, e->d_name);
        if (rmdir(p) != 0) unlink(p);
    }
    closedir(d);
    rmdir(td->dir);
}

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

static unsigned char *slurp(const char *path, size_t *n) {
    char err[512];
    unsigned char *b = read_file(path, n, err, sizeof err);
    ck_assert_msg(b != NULL, "%s", err);
    return b;
}

static void put32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const unsigned char *p) { return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32; }

// Rewrites the trailer so that the checksum is right for whatever the bytes now are.
static void fix_crc(unsigned char *b, size_t n) { put32(b + n - 4, crc32c(0, b, n - 4)); }

// The offset of a section's header (its tag) in a file; the payload follows 12 bytes later.
static size_t find_section(const unsigned char *b, size_t n, const char *tag, uint64_t *len) {
    size_t pos = HEADER_BYTES;
    while (pos + 12 <= n - 4) {
        uint64_t l = get64(b + pos + 4);
        if (get32(b + pos) == TAG(tag)) {
            *len = l;
            return pos;
        }
        pos += 12 + (size_t)l;
    }
    ck_abort_msg("no section %s", tag);
    return 0;
}

// A copy of b with the bytes [at, at + cut) replaced by ins[0..n_ins), the checksum fixed.
static unsigned char *edit_bytes(const unsigned char *b, size_t n, size_t at, size_t cut, const void *ins, size_t n_ins,
                             size_t *out_n) {
    size_t m = n - cut + n_ins;
    unsigned char *o = xmalloc(m);
    memcpy(o, b, at);
    if (n_ins) memcpy(o + at, ins, n_ins);
    memcpy(o + at + n_ins, b + at + cut, n - at - cut);
    fix_crc(o, m);
    *out_n = m;
    return o;
}

static bool ck_is_empty(const Checkpoint *ck) {
    const CheckpointTraining *t = &ck->training;
    return ck->tok == NULL && ck->params == NULL && t->settings == NULL && t->state == NULL && t->opt_m == NULL &&
           t->opt_v == NULL;
}

static void assert_ck_empty(const Checkpoint *ck) {
    ck_assert(ck_is_empty(ck));
    ck_assert_uint_eq(ck->num_params, 0);
    ck_assert(!ck->has_training);
}

// Loads from an exact-size copy, so AddressSanitizer sees any read past the end.
static bool load_mem(const unsigned char *b, size_t n, Checkpoint *ck, char *err, size_t errlen) {
    unsigned char *copy = xmalloc(n);
    if (n) memcpy(copy, b, n);
    bool ok = checkpoint_load_from_memory(copy, n, "mem.ckpt", ck, err, errlen);
    free(copy);
    return ok;
}

// Loading b must fail, say why with these words, and leave ck empty.
static void assert_mem_fails(const unsigned char *b, size_t n, const char *reason) {
    Checkpoint ck;
    memset(&ck, 0xAB, sizeof ck);  // whatever was there before
    char err[512] = "";
    bool ok = load_mem(b, n, &ck, err, sizeof err);
    if (ok) checkpoint_free(&ck);
    ck_assert_msg(!ok, "loaded, expected a failure saying '%s'", reason);
    ck_assert_msg(strstr(err, reason) != NULL, "'%s' does not say '%s'", err, reason);
    ck_assert_msg(strncmp(err, "'mem.ckpt' ", 11) == 0, "'%s' does not name the file first", err);
    ck_assert_ptr_null(strchr(err, '\n'));
    assert_ck_empty(&ck);
}

// b loads, but its training state must not decode: these words, the file named first, one line.
static void assert_run_fails(const unsigned char *b, size_t n, const char *reason) {
    Checkpoint ck;
    char err[512] = "";
    ck_assert_msg(load_mem(b, n, &ck, err, sizeof err), "%s", err);
    ck_assert(ck.has_training);
    TrainConfig tc;
    TrainState ts;
    bool ok = train_state_decode(&ck, "mem.ckpt", &tc, &ts, err, sizeof err);
    checkpoint_free(&ck);
    ck_assert_msg(!ok, "decoded, expected a failure saying '%s'", reason);
    ck_assert_msg(strstr(err, reason) != NULL, "'%s' does not say '%s'", err, reason);
    ck_assert_msg(strncmp(err, "'mem.ckpt' is not a valid checkpoint: ", 38) == 0, "'%s' does not name the file first",
                  err);
    ck_assert_ptr_null(strchr(err, '\n'));
}

static void assert_load_fails(const char *path, const char *reason) {
    Checkpoint ck;
    memset(&ck, 0xAB, sizeof ck);
    char err[512] = "";
    bool ok = checkpoint_load(path, &ck, err, sizeof err);
    if (ok) checkpoint_free(&ck);
    ck_assert_msg(!ok, "'%s' loaded, expected a failure saying '%s'", path, reason);
    ck_assert_msg(strstr(err, reason) != NULL, "'%s' does not say '%s'", err, reason);
    ck_assert_msg(strstr(err, path) != NULL, "'%s' does not name '%s'", err, path);
    ck_assert_ptr_null(strchr(err, '\n'));
    assert_ck_empty(&ck);
}

// A model with its tokenizer and, for the training state, a run's settings, state and
// optimizer moments, each field set to something other than its default.
typedef struct {
    GPT m;
    Tokenizer *tok;
    AdamW opt;
    TrainConfig tc;
    TrainState ts;
} Fixture;

static void fixture_init(Fixture *f, const char *text, GPTConfig cfg) {
    memset(f, 0, sizeof *f);
    f->tok = tokenizer_train_char((const unsigned char *)text, strlen(text));
    cfg.vocab_size = tokenizer_vocab_size(f->tok);
    gpt_init(&f->m, &cfg, 0, 42, GPT_INIT_WEIGHTS);
    Rng r;
    rng_seed(&r, 7);
    adamw_init(&f->opt, f->m.num_params);
    fill_normal(f->opt.m, f->m.num_params, &r, 0.01);
    fill_uniform(f->opt.v, f->m.num_params, &r, 0.0, 1e-4);
    f->opt.step = 17;

    TrainConfig *tc = &f->tc;
    train_config_defaults(tc);
    snprintf(tc->data_path, sizeof tc->data_path, "%s", "data/some text with spaces.txt");
    snprintf(tc->out_dir, sizeof tc->out_dir, "%s", "runs/tiny");
    tc->model = cfg;
    tc->batch_size = 3;
    tc->iters = 500;
    tc->lr = 3e-4f;
    tc->min_lr = 3e-5f;
    tc->warmup_iters = 11;
    tc->lr_decay_iters = 450;
    tc->weight_decay = 0.05f;
    tc->beta1 = 0.85f;
    tc->beta2 = 0.95f;
    tc->grad_clip = 0.5f;
    tc->grad_accum = 2;
    tc->eval_interval = 25;
    tc->eval_iters = 4;
    tc->sample_interval = 0;
    tc->sample_tokens = 33;
    tc->log_interval = 9;
    tc->seed = 0xFEDCBA9876543210ull;
    tc->threads = 3;
    tc->tokenizer = TOKENIZER_BPE;
    tc->bpe_vocab_size = 777;
    tc->dropout = 0.125f;
    tc->optimizer = OPTIMIZER_MUON;
    tc->muon_lr = 0.04f;
    tc->muon_momentum = 0.85f;
    tc->time_budget_s = 90.5f;
    tc->zero_init_proj = 1;

    TrainState *ts = &f->ts;
    ts->step = 17;
    Rng sampler;
    rng_seed(&sampler, 1234);
    rng_u64(&sampler);
    memcpy(ts->rng, sampler.s, sizeof ts->rng);
    ts->best_val_loss = 2.5f;
    ts->best_step = 10;
    ts->elapsed_s = 3723.25;
    ts->data_crc = 0xDEADBEEFu;
    ts->data_bytes = 5000000000ull;
}

// V=5 (a char tokenizer of "abcde"), T=4, L=1, H=2, C=4: 240 parameters, a file of ~1 KB
// (~3 KB with the training state).
static void tiny_fixture(Fixture *f) {
    fixture_init(f, "abcde", (GPTConfig){.block_size = 4, .n_layer = 1, .n_head = 2, .n_embd = 4});
}

static void fixture_free(Fixture *f) {
    gpt_free(&f->m);
    tokenizer_free(f->tok);
    adamw_free(&f->opt);
}

static void save_ok(const Fixture *f, bool train, const char *path) {
    char err[512] = "";
    bool ok = train ? train_checkpoint_save(path, &f->m, f->tok, &f->opt, &f->tc, &f->ts, err, sizeof err)
                    : checkpoint_save(path, &f->m, f->tok, NULL, err, sizeof err);
    ck_assert_msg(ok, "save failed: %s", err);
}

// The bytes of the fixture's checkpoint.
static unsigned char *saved_bytes(const Fixture *f, bool train, size_t *n) {
    TempDir td;
    temp_dir(&td);
    const char *path = temp_path(&td, "ck.bin");
    save_ok(f, train, path);
    unsigned char *b = slurp(path, n);
    temp_cleanup(&td);
    return b;
}

static void assert_tokenizers_equal(const Tokenizer *a, const Tokenizer *b) {
    size_t na, nb;
    unsigned char *ia = tokenizer_serialize(a, &na), *ib = tokenizer_serialize(b, &nb);
    ck_assert_uint_eq(na, nb);
    ck_assert_mem_eq(ia, ib, na);
    free(ia);
    free(ib);
}

static void assert_config_eq(const GPTConfig *a, const GPTConfig *b) {
    ck_assert_int_eq(a->vocab_size, b->vocab_size);
    ck_assert_int_eq(a->block_size, b->block_size);
    ck_assert_int_eq(a->n_layer, b->n_layer);
    ck_assert_int_eq(a->n_head, b->n_head);
    ck_assert_int_eq(a->n_embd, b->n_embd);
}

static void assert_train_config_eq(const TrainConfig *a, const TrainConfig *b) {
    ck_assert_str_eq(a->data_path, b->data_path);
    ck_assert_str_eq(a->out_dir, b->out_dir);
    assert_config_eq(&a->model, &b->model);
    ck_assert_int_eq(a->batch_size, b->batch_size);
    ck_assert_int_eq(a->iters, b->iters);
    ck_assert(a->lr == b->lr && a->min_lr == b->min_lr);
    ck_assert_int_eq(a->warmup_iters, b->warmup_iters);
    ck_assert_int_eq(a->lr_decay_iters, b->lr_decay_iters);
    ck_assert(a->weight_decay == b->weight_decay && a->beta1 == b->beta1 && a->beta2 == b->beta2);
    ck_assert(a->grad_clip == b->grad_clip);
    ck_assert_int_eq(a->grad_accum, b->grad_accum);
    ck_assert_int_eq(a->eval_interval, b->eval_interval);
    ck_assert_int_eq(a->eval_iters, b->eval_iters);
    ck_assert_int_eq(a->sample_interval, b->sample_interval);
    ck_assert_int_eq(a->sample_tokens, b->sample_tokens);
    ck_assert_int_eq(a->log_interval, b->log_interval);
    ck_assert_uint_eq(a->seed, b->seed);
    ck_assert_int_eq(a->threads, b->threads);
    ck_assert_int_eq(a->tokenizer, b->tokenizer);
    ck_assert_int_eq(a->bpe_vocab_size, b->bpe_vocab_size);
}

static void assert_train_state_eq(const TrainState *a, const TrainState *b) {
    ck_assert_int_eq(a->step, b->step);
    for (int i = 0; i < 4; i++) ck_assert_uint_eq(a->rng[i], b->rng[i]);
    ck_assert_mem_eq(&a->best_val_loss, &b->best_val_loss, sizeof(float));  // +Inf included
    ck_assert_int_eq(a->best_step, b->best_step);
    ck_assert(a->elapsed_s == b->elapsed_s);
    ck_assert_uint_eq(a->data_crc, b->data_crc);
    ck_assert_uint_eq(a->data_bytes, b->data_bytes);
}

// Saves, loads back and compares everything.
static void assert_round_trip(const Fixture *f, bool train) {
    TempDir td;
    temp_dir(&td);
    const char *path = temp_path(&td, "ck.bin");
    save_ok(f, train, path);
    char names[256];
    ck_assert_int_eq(dir_list(td.dir, names, sizeof names), 1);  // no temporary file left
    ck_assert_str_eq(names, "ck.bin");

    Checkpoint ck;
    char err[512] = "";
    ck_assert_msg(checkpoint_load(path, &ck, err, sizeof err), "load failed: %s", err);
    assert_config_eq(&ck.config, &f->m.config);
    assert_tokenizers_equal(ck.tok, f->tok);
    ck_assert_uint_eq(ck.num_params, f->m.num_params);
    ck_assert_mem_eq(ck.params, f->m.params, f->m.num_params * sizeof(float));
    ck_assert(ck.has_training == train);
    if (train) {
        TrainConfig tc;
        TrainState ts;
        ck_assert_msg(train_state_decode(&ck, path, &tc, &ts, err, sizeof err), "decode failed: %s", err);
        assert_train_config_eq(&tc, &f->tc);
        assert_train_state_eq(&ts, &f->ts);
        ck_assert_int_eq(ck.training.opt_step, f->opt.step);
        ck_assert_mem_eq(ck.training.opt_m, f->opt.m, f->m.num_params * sizeof(float));
        ck_assert_mem_eq(ck.training.opt_v, f->opt.v, f->m.num_params * sizeof(float));
    } else {
        ck_assert_ptr_null(ck.training.opt_m);
        ck_assert_ptr_null(ck.training.opt_v);
        ck_assert_ptr_null(ck.training.settings);
    }

    // The model built from it has the same weights.
    GPT m;
    checkpoint_to_model(&ck, &m, 0, 0);
    assert_config_eq(&m.config, &f->m.config);
    ck_assert_uint_eq(m.num_params, f->m.num_params);
    ck_assert_mem_eq(m.params, f->m.params, m.num_params * sizeof(float));
    ck_assert_ptr_null(m.grads);
    gpt_free(&m);
    checkpoint_free(&ck);
    assert_ck_empty(&ck);
    temp_cleanup(&td);
}

// ---------------------------------------------------------------------------------------------
// Round trips.

START_TEST(test_round_trip_without_training_state) {
    Fixture f;
    tiny_fixture(&f);
    assert_round_trip(&f, false);
    fixture_free(&f);
}
END_TEST

START_TEST(test_round_trip_with_training_state) {
    Fixture f;
    tiny_fixture(&f);
    assert_round_trip(&f, true);
    // Before the first evaluation: best_val_loss is +Inf, the one non-finite value allowed.
    f.ts.best_val_loss = INFINITY;
    f.ts.best_step = -1;
    f.ts.elapsed_s = 0;
    f.tc.data_path[0] = 0;  // an empty string
    memset(f.tc.out_dir, 'x', sizeof f.tc.out_dir - 1);  // the longest string its field holds
    f.tc.out_dir[sizeof f.tc.out_dir - 1] = 0;
    assert_round_trip(&f, true);
    fixture_free(&f);
}
END_TEST

START_TEST(test_round_trip_larger_than_the_write_buffer) {
    // ~110k parameters: the parameters and both moments span many 64 KiB buffers.
    Fixture f;
    fixture_init(&f, "The quick brown fox jumps over the lazy dog!\n",
                 (GPTConfig){.block_size = 64, .n_layer = 2, .n_head = 4, .n_embd = 64});
    ck_assert_uint_gt(f.m.num_params * sizeof(float), 4 * 65536);
    assert_round_trip(&f, true);
    fixture_free(&f);
}
END_TEST

START_TEST(test_training_records_travel_as_bytes) {
    // checkpoint/ frames the two training records without reading them: what goes in comes
    // back, byte for byte, whatever it is (train/ gives it meaning).
    Fixture f;
    tiny_fixture(&f);
    unsigned char settings[] = "any bytes\0at all", state[] = {1, 2, 3};
    CheckpointTraining t = {.settings = settings, .settings_len = sizeof settings, .state = state,
                            .state_len = sizeof state, .opt_step = 5, .opt_m = f.opt.m, .opt_v = f.opt.v};
    TempDir td;
    temp_dir(&td);
    const char *path = temp_path(&td, "ck.bin");
    char err[512];
    ck_assert_msg(checkpoint_save(path, &f.m, f.tok, &t, err, sizeof err), "%s", err);
    Checkpoint ck;
    ck_assert_msg(checkpoint_load(path, &ck, err, sizeof err), "%s", err);
    ck_assert(ck.has_training);
    ck_assert_uint_eq(ck.training.settings_len, sizeof settings);
    ck_assert_mem_eq(ck.training.settings, settings, sizeof settings);
    ck_assert_uint_eq(ck.training.state_len, sizeof state);
    ck_assert_mem_eq(ck.training.state, state, sizeof state);
    ck_assert_int_eq(ck.training.opt_step, 5);
    // They are not a run's records, and decoding says so.
    TrainConfig tc;
    TrainState ts;
    ck_assert(!train_state_decode(&ck, path, &tc, &ts, err, sizeof err));
    ck_assert_msg(strstr(err, "training settings (TCFG)") != NULL, "%s", err);
    checkpoint_free(&ck);
    temp_cleanup(&td);
    fixture_free(&f);
}
END_TEST

START_TEST(test_saved_file_starts_with_magic_and_version) {
    Fixture f;
    tiny_fixture(&f);
    size_t n;
    unsigned char *b = saved_bytes(&f, false, &n);
    ck_assert_uint_gt(n, FIXED_BYTES);
    ck_assert_mem_eq(b, "GPTCKPT\0", 8);
    ck_assert_uint_eq(get32(b + 8), CHECKPOINT_VERSION);
    ck_assert_uint_eq(get32(b + n - 4), crc32c(0, b, n - 4));
    // The sections in the documented order, their sizes as documented.
    uint64_t len;
    ck_assert_uint_eq(find_section(b, n, "CONF", &len), HEADER_BYTES);
    ck_assert_uint_eq(len, 24);
    find_section(b, n, "PARM", &len);
    ck_assert_uint_eq(len, 8 + 4 * f.m.num_params);
    free(b);
    b = saved_bytes(&f, true, &n);
    find_section(b, n, "TSTA", &len);
    ck_assert_uint_eq(len, 72);
    find_section(b, n, "ADAM", &len);
    ck_assert_uint_eq(len, 16 + 8 * f.m.num_params);
    free(b);
    fixture_free(&f);
}
END_TEST

START_TEST(test_settings_record_keeps_its_byte_layout) {
    // The TCFG record spelled out field by field, as version 3 lays it out (version 1's rows,
    // then dropout; version 3 added the model's features, the optimizer's three rows, the time
    // budget and zero_init_proj): the rows of checkpoint/run_config.h must keep this order and
    // these encodings, or older checkpoints would be read wrong.
    Fixture f;
    tiny_fixture(&f);
    size_t n;
    unsigned char *b = saved_bytes(&f, true, &n);
    uint64_t len;
    size_t at = find_section(b, n, "TCFG", &len) + 12;
    unsigned char want[256];
    size_t k = 0;
#define U32(v) (put32(want + k, (uint32_t)(v)), k += 4)
#define U64(v) (put64(want + k, (uint64_t)(v)), k += 8)
#define F32(v) U32(f32_bits(v))
#define STR(s) (U32(strlen(s)), memcpy(want + k, s, strlen(s)), k += strlen(s))
    STR("data/some text with spaces.txt");
    STR("runs/tiny");
    U32(5), U32(4), U32(1), U32(2), U32(4), U32(0);                 // model: V, T, L, H, C, features
    U32(3), U64(500), F32(3e-4f), F32(3e-5f), U64(11), U64(450);     // batch_size .. lr_decay_iters
    F32(0.05f), F32(0.85f), F32(0.95f), F32(0.5f), U32(2);           // weight_decay .. grad_accum
    U64(25), U64(4), U64(0), U32(33), U64(9);                        // eval_interval .. log_interval
    U64(0xFEDCBA9876543210ull), U32(3), U32(TOKENIZER_BPE), U32(777); // seed .. bpe_vocab_size
    F32(0.125f);                                                     // dropout (version 2)
    U32(OPTIMIZER_MUON), F32(0.04f), F32(0.85f), F32(90.5f);         // optimizer .. time_budget_s (3)
    U32(1);                                                          // zero_init_proj (version 3)
#undef U32
#undef U64
#undef F32
#undef STR
    ck_assert_uint_eq(len, k);
    ck_assert_mem_eq(b + at, want, k);
    free(b);
    fixture_free(&f);
}
END_TEST

START_TEST(test_saving_over_a_checkpoint_replaces_it) {
    Fixture f;
    tiny_fixture(&f);
    TempDir td;
    temp_dir(&td);
    const char *path = temp_path(&td, "ck.bin");
    save_ok(&f, true, path);
    f.m.params[0] = 42.0f;
    save_ok(&f, false, path);
    char names[256];
    ck_assert_int_eq(dir_list(td.dir, names, sizeof names), 1);
    Checkpoint ck;
    char err[512];
    ck_assert_msg(checkpoint_load(path, &ck, err, sizeof err), "%s", err);
    ck_assert(!ck.has_training);
    ck_assert(ck.params[0] == 42.0f);
    checkpoint_free(&ck);
    temp_cleanup(&td);
    fixture_free(&f);
}
END_TEST

// ---------------------------------------------------------------------------------------------
// Files that are not checkpoints, or damaged ones.

START_TEST(test_load_missing_empty_directory_and_foreign_files_fail) {
    TempDir td;
    temp_dir(&td);
    assert_load_fails(temp_path(&td, "missing.bin"), "cannot open");
    assert_load_fails(td.dir, "is a directory");
    write_bytes(temp_path(&td, "empty"), "", 0);
    assert_load_fails(temp_path(&td, "empty"), "is empty, expected a gpt checkpoint");
    const char text[] = "hello, world: not a checkpoint at all\n";
    write_bytes(temp_path(&td, "text"), text, sizeof text - 1);
    assert_load_fails(temp_path(&td, "text"), "is not a gpt checkpoint (bad magic)");
    write_bytes(temp_path(&td, "short"), "hi", 2);  // short, and not the start of a checkpoint
    assert_load_fails(temp_path(&td, "short"), "is not a gpt checkpoint (bad magic)");
    write_bytes(temp_path(&td, "header"), "GPTCKPT\0\1\0\0", 11);
    assert_load_fails(temp_path(&td, "header"), "is truncated");
    temp_cleanup(&td);
}
END_TEST

START_TEST(test_load_newer_version_fails) {
    Fixture f;
    tiny_fixture(&f);
    size_t n;
    unsigned char *b = saved_bytes(&f, true, &n);
    TempDir td;
    temp_dir(&td);
    put32(b + 8, 7);
    fix_crc(b, n);  // only the version is wrong
    const char *path = temp_path(&td, "v7.bin");
    write_bytes(path, b, n);
    char expected[512], err[512] = "";
    snprintf(expected, sizeof expected,
             "'%s' has checkpoint version 7; this gpt reads versions 1 to 3 (built from an older source?)", path);
    Checkpoint ck;
    ck_assert(!checkpoint_load(path, &ck, err, sizeof err));
    ck_assert_str_eq(err, expected);
    assert_ck_empty(&ck);
    put32(b + 8, 0);
    fix_crc(b, n);
    assert_mem_fails(b, n, "version 0");
    free(b);
    temp_cleanup(&td);
    fixture_free(&f);
}
END_TEST

START_TEST(test_load_every_truncation_fails) {
    Fixture f;
    tiny_fixture(&f);
    for (int train = 0; train < 2; train++) {
        size_t n;
        unsigned char *b = saved_bytes(&f, train, &n);
        size_t bad = n;
        char why[640] = "";
        for (size_t k = 0; k < n && bad == n; k++) {
            Checkpoint ck;
            memset(&ck, 0xAB, sizeof ck);
            char err[512] = "";
            bool ok = load_mem(b, k, &ck, err, sizeof err);
            const char *expect = k == 0 ? "is empty" : k < FIXED_BYTES ? "is truncated" : "checksum mismatch";
            bool empty = ck_is_empty(&ck);
            if (ok) checkpoint_free(&ck);
            if (ok || !strstr(err, expect) || !empty) {
                bad = k;
                snprintf(why, sizeof why, "%s (expected '%s'%s)", ok ? "loaded" : err, expect,
                         empty ? "" : ", ck not empty");
            }
        }
        ck_assert_msg(bad == n, "truncated to %zu of %zu bytes: %s", bad, n, why);
        // And through a file, the name in the message.
        TempDir td;
        temp_dir(&td);
        const char *path = temp_path(&td, "cut.bin");
        write_bytes(path, b, n - 1);
        assert_load_fails(path, "is corrupt: checksum mismatch (truncated or damaged file)");
        write_bytes(path, b, HEADER_BYTES);
        assert_load_fails(path, "is truncated");
        temp_cleanup(&td);
        free(b);
    }
    fixture_free(&f);
}
END_TEST

START_TEST(test_load_every_bit_flip_fails) {
    Fixture f;
    tiny_fixture(&f);
    for (int train = 0; train < 2; train++) {
        size_t n;
        unsigned char *b = saved_bytes(&f, train, &n);
        unsigned char *copy = xmalloc(n);  // exact size: ASan sees any read past the end
        memcpy(copy, b, n);
        size_t bad = n * 8;
        char why[640] = "";
        for (size_t bit = 0; bit < n * 8 && bad == n * 8; bit++) {
            size_t at = bit / 8;
            copy[at] ^= (unsigned char)(1u << (bit % 8));
            Checkpoint ck;
            char err[512] = "";
            bool ok = checkpoint_load_from_memory(copy, n, "flip", &ck, err, sizeof err);
            // A version flipped into another one this gpt reads gets as far as the checksum.
            uint32_t version = get32(copy + 8);
            bool readable_version = version >= 1 && version <= CHECKPOINT_VERSION;
            copy[at] = b[at];
            const char *expect = at < 8                                    ? "bad magic"
                                 : at < HEADER_BYTES && !readable_version ? "checkpoint version"
                                                                          : "checksum mismatch";
            bool empty = ck_is_empty(&ck);
            if (ok) checkpoint_free(&ck);
            if (ok || !strstr(err, expect) || !empty) {
                bad = bit;
                snprintf(why, sizeof why, "%s (expected '%s')", ok ? "loaded" : err, expect);
            }
        }
        ck_assert_msg(bad == n * 8, "bit %zu of byte %zu flipped: %s", bad % 8, bad / 8, why);
        free(copy);
        free(b);
    }
    fixture_free(&f);
}
END_TEST

// ---------------------------------------------------------------------------------------------
// Malformed sections behind a valid checksum: what a buggy writer (or a fuzzer) could make.

START_TEST(test_load_corrupt_tokenizer_with_valid_crc_fails) {
    Fixture f;
    tiny_fixture(&f);
    size_t n;
    unsigned char *b = saved_bytes(&f, false, &n);
    uint64_t len;
    size_t at = find_section(b, n, "TOKN", &len) + 12;
    put32(b + at, 9);  // the image's own version
    fix_crc(b, n);
    assert_mem_fails(b, n, "its tokenizer is corrupt: tokenizer image has version 9");
    put32(b + at, 1);
    put32(b + at + 4, 3);  // kind 3
    fix_crc(b, n);
    assert_mem_fails(b, n, "its tokenizer is corrupt");
    put32(b + at + 4, TOKENIZER_CHAR);
    uint32_t first = get32(b + at + 16), second = get32(b + at + 20);  // code points out of order
    put32(b + at + 16, second);
    put32(b + at + 20, first);
    fix_crc(b, n);
    assert_mem_fails(b, n, "its tokenizer is corrupt");
    free(b);
    fixture_free(&f);
}
END_TEST

START_TEST(test_load_tokenizer_vocab_mismatch_fails) {
    // A 6-token tokenizer in a checkpoint whose config (and parameters) say 5.
    Fixture f, g;
    tiny_fixture(&f);
    fixture_init(&g, "abcdef", (GPTConfig){.block_size = 4, .n_layer = 1, .n_head = 2, .n_embd = 4});
    size_t n, ng;
    unsigned char *b = saved_bytes(&f, false, &n), *bg = saved_bytes(&g, false, &ng);
    uint64_t len, len_g;
    size_t at = find_section(b, n, "TOKN", &len), at_g = find_section(bg, ng, "TOKN", &len_g);
    size_t m;
    unsigned char *mixed = edit_bytes(b, n, at, 12 + (size_t)len, bg + at_g, 12 + (size_t)len_g, &m);
    assert_mem_fails(mixed, m, "its tokenizer has 6 tokens, its model config vocab_size 5");
    free(mixed);
    free(b);
    free(bg);
    fixture_free(&f);
    fixture_free(&g);
}
END_TEST

START_TEST(test_load_bad_config_fails) {
    Fixture f;
    tiny_fixture(&f);
    size_t n;
    unsigned char *b = saved_bytes(&f, false, &n);
    uint64_t len;
    size_t at = find_section(b, n, "CONF", &len) + 12;
    put32(b + at + 12, 3);  // n_head 3 does not divide n_embd 4
    fix_crc(b, n);
    assert_mem_fails(b, n, "does not divide");
    put32(b + at + 12, 2);
    put32(b + at + 8, (uint32_t)-1);  // n_layer -1
    fix_crc(b, n);
    assert_mem_fails(b, n, "out of range");
    put32(b + at + 8, 1);
    size_t m;
    unsigned char *x = edit_bytes(b, n, at + 20, 4, NULL, 0, &m);  // CONF without its features
    put64(x + at - 8, 20);
    fix_crc(x, m);
    assert_mem_fails(x, m, "its model config (CONF) section is too short");
    free(x);
    // Feature bits this gpt does not run are refused by number (every named one runs).
    put32(b + at + 20, GPT_FEAT_ROPE | 1u << 9);
    fix_crc(b, n);
    assert_mem_fails(b, n, "its model config: this gpt does not run the model's features: bit 9 (it runs: ");
    free(b);
    fixture_free(&f);
}
END_TEST

START_TEST(test_load_param_count_mismatch_fails) {
    Fixture f;
    tiny_fixture(&f);
    size_t n;
    unsigned char *b = saved_bytes(&f, true, &n);
    uint64_t len;
    size_t at = find_section(b, n, "PARM", &len) + 12;
    put64(b + at, f.m.num_params + 1);
    fix_crc(b, n);
    assert_mem_fails(b, n, "holds 241 parameters, but its model config (V=5 T=4 L=1 H=2 C=4) has 240");
    put64(b + at, f.m.num_params);
    at = find_section(b, n, "ADAM", &len) + 12;
    put64(b + at + 8, f.m.num_params - 1);
    fix_crc(b, n);
    assert_mem_fails(b, n, "optimizer state has 239 moments");
    free(b);
    fixture_free(&f);
}
END_TEST

START_TEST(test_load_non_finite_values_fail) {
    Fixture f;
    tiny_fixture(&f);
    size_t n;
    unsigned char *b = saved_bytes(&f, true, &n);
    uint64_t len;
    const uint32_t nan_bits = 0x7FC00000u, inf_bits = 0x7F800000u, neg_bits = 0xBF800000u;  // NaN, +Inf, -1
    size_t p = find_section(b, n, "PARM", &len) + 12 + 8;
    size_t last = p + 4 * (f.m.num_params - 1);
    uint32_t saved = get32(b + last);
    put32(b + last, nan_bits);
    fix_crc(b, n);
    assert_mem_fails(b, n, "parameter 239 of 240 is nan");
    put32(b + last, inf_bits);
    fix_crc(b, n);
    assert_mem_fails(b, n, "parameter 239 of 240 is inf");
    put32(b + last, saved);

    size_t a = find_section(b, n, "ADAM", &len) + 12 + 16;
    saved = get32(b + a);
    put32(b + a, inf_bits);
    fix_crc(b, n);
    assert_mem_fails(b, n, "first moment 0 of 240 is inf");
    put32(b + a, saved);
    size_t v = a + 4 * f.m.num_params;
    saved = get32(b + v);
    put32(b + v, neg_bits);
    fix_crc(b, n);
    assert_mem_fails(b, n, "second moment 0 of 240 is -1");
    put32(b + v, saved);

    size_t s = find_section(b, n, "TSTA", &len) + 12;
    size_t best = s + 8 + 32;
    saved = get32(b + best);
    put32(b + best, nan_bits);
    fix_crc(b, n);
    assert_run_fails(b, n, "best_val_loss");
    put32(b + best, saved);
    for (int i = 0; i < 4; i++) put64(b + s + 8 + 8 * i, 0);
    fix_crc(b, n);
    assert_run_fails(b, n, "all-zero RNG state");
    free(b);
    fixture_free(&f);
}
END_TEST

START_TEST(test_load_bad_training_settings_fail) {
    Fixture f;
    tiny_fixture(&f);
    size_t n;
    unsigned char *b = saved_bytes(&f, true, &n);
    uint64_t len;
    size_t t = find_section(b, n, "TCFG", &len) + 12;
    // data_path's length past the 1023 bytes its field holds.
    uint32_t saved = get32(b + t);
    put32(b + t, 5000);
    fix_crc(b, n);
    assert_run_fails(b, n, "data_path of 5000 bytes");
    put32(b + t, 1024);  // one more than its field holds with the NUL
    fix_crc(b, n);
    assert_run_fails(b, n, "data_path of 1024 bytes (at most 1023)");
    put32(b + t, saved);
    // A NUL inside it.
    b[t + 4] = 0;
    fix_crc(b, n);
    assert_run_fails(b, n, "NUL byte inside data_path");
    b[t + 4] = (unsigned char)f.tc.data_path[0];
    // batch_size 0: right after the two strings and the model config.
    size_t bs = t + 4 + strlen(f.tc.data_path) + 4 + strlen(f.tc.out_dir) + 24;
    put32(b + bs, 0);
    fix_crc(b, n);
    assert_run_fails(b, n, "batch_size = 0");
    put32(b + bs, (uint32_t)f.tc.batch_size);
    // lr NaN: after batch_size and iters.
    put32(b + bs + 12, 0x7FC00000u);
    fix_crc(b, n);
    assert_run_fails(b, n, "lr = nan");
    // lr 0, below what --lr accepts.
    put32(b + bs + 12, 0);
    fix_crc(b, n);
    assert_run_fails(b, n, "lr = 0 (expected 1e-12 to 10)");
    put32(b + bs + 12, f32_bits(f.tc.lr));
    // The tokenizer kind, 32 bytes from the end (bpe_vocab_size, dropout, optimizer, muon_lr,
    // muon_momentum, time_budget_s and zero_init_proj follow it).
    put32(b + t + len - 32, 5);
    fix_crc(b, n);
    assert_run_fails(b, n, "tokenizer kind 5");
    put32(b + t + len - 32, TOKENIZER_BPE);
    // dropout 1: nothing would be left of the network.
    put32(b + t + len - 24, f32_bits(1.0f));
    fix_crc(b, n);
    assert_run_fails(b, n, "dropout = 1 (expected 0 to 0.999999)");
    put32(b + t + len - 24, f32_bits(f.tc.dropout));
    // An optimizer kind that is neither.
    put32(b + t + len - 20, 2);
    fix_crc(b, n);
    assert_run_fails(b, n, "optimizer kind 2 (expected 0 adamw or 1 muon)");
    put32(b + t + len - 20, OPTIMIZER_MUON);
    // muon_momentum 1: the momentum would never forget.
    put32(b + t + len - 12, f32_bits(1.0f));
    fix_crc(b, n);
    assert_run_fails(b, n, "muon_momentum = 1 (expected 0 to 0.999999)");
    put32(b + t + len - 12, f32_bits(f.tc.muon_momentum));
    // A negative time budget.
    put32(b + t + len - 8, f32_bits(-1.0f));
    fix_crc(b, n);
    assert_run_fails(b, n, "time_budget_s = -1 (expected 0 to 3.1536e+07)");
    put32(b + t + len - 8, f32_bits(f.tc.time_budget_s));
    // zero_init_proj 2, the last field: it is 0 or 1.
    put32(b + t + len - 4, 2);
    fix_crc(b, n);
    assert_run_fails(b, n, "zero_init_proj = 2 (expected 0 to 1)");
    free(b);
    fixture_free(&f);
}
END_TEST

START_TEST(test_load_unknown_duplicate_missing_and_oversized_sections_fail) {
    Fixture f;
    tiny_fixture(&f);
    size_t n, m;
    unsigned char *b = saved_bytes(&f, true, &n);
    uint64_t len;
    size_t tsta = find_section(b, n, "TSTA", &len);

    unsigned char *x = edit_bytes(b, n, tsta, 4, "XTRA", 4, &m);  // unknown tag
    assert_mem_fails(x, m, "unknown section tag 0x41525458 (\"XTRA\")");
    free(x);
    x = edit_bytes(b, n, tsta, 4, "TCFG", 4, &m);  // a second TCFG
    assert_mem_fails(x, m, "a second training settings (TCFG) section");
    free(x);
    x = edit_bytes(b, n, tsta, 12 + (size_t)len, NULL, 0, &m);  // TSTA left out
    assert_mem_fails(x, m, "has training state but no training state (TSTA) section");
    free(x);
    uint64_t tokn_len;
    size_t tokn = find_section(b, n, "TOKN", &tokn_len);
    x = edit_bytes(b, n, tokn, 12 + (size_t)tokn_len, NULL, 0, &m);  // no tokenizer at all
    assert_mem_fails(x, m, "has no tokenizer (TOKN) section");
    free(x);
    // Sections in another order are fine: TOKN moved to the very end.
    unsigned char *moved = xmalloc(n);
    size_t tl = 12 + (size_t)tokn_len;
    memcpy(moved, b, tokn);
    memcpy(moved + tokn, b + tokn + tl, n - 4 - tokn - tl);
    memcpy(moved + n - 4 - tl, b + tokn, tl);
    fix_crc(moved, n);
    Checkpoint ck;
    char err[512];
    ck_assert_msg(load_mem(moved, n, &ck, err, sizeof err), "%s", err);
    ck_assert(ck.has_training);
    checkpoint_free(&ck);
    free(moved);

    // Lengths that run past the end, up to the largest u64 (no overflow in the bounds check).
    const uint64_t huge[] = {n, (uint64_t)1 << 40, UINT64_MAX, UINT64_MAX - 11};
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        put64(b + tsta + 4, huge[i]);
        fix_crc(b, n);
        assert_mem_fails(b, n, "training state (TSTA) section claims");
    }
    put64(b + tsta + 4, len - 1);  // one byte short: the rest is stray bytes
    fix_crc(b, n);
    assert_mem_fails(b, n, "is not a valid checkpoint");
    put64(b + tsta + 4, len);
    // A few bytes after the last section, too few to be a section header.
    x = edit_bytes(b, n, n - 4, 0, "abc", 3, &m);
    assert_mem_fails(x, m, "3 stray bytes");
    free(x);
    // A section with slack at its end.
    unsigned char *grown = edit_bytes(b, n, tsta + 12 + (size_t)len, 0, "\0\0\0\0", 4, &m);
    put64(grown + tsta + 4, len + 4);
    fix_crc(grown, m);
    assert_run_fails(grown, m, "its training state (TSTA) section has 4 unexpected bytes at its end");
    free(grown);
    free(b);
    fixture_free(&f);
}
END_TEST

// ---------------------------------------------------------------------------------------------
// Saving when it cannot succeed.

START_TEST(test_save_into_missing_directory_fails_and_creates_nothing) {
    Fixture f;
    tiny_fixture(&f);
    TempDir td;
    temp_dir(&td);
    const char *path = temp_path(&td, "no/such/dir/ck.bin");
    char err[512] = "";
    ck_assert(!checkpoint_save(path, &f.m, f.tok, NULL, err, sizeof err));
    ck_assert_msg(strstr(err, path) != NULL && strstr(err, "No such file or directory") != NULL, "%s", err);
    char names[256];
    ck_assert_int_eq(dir_list(td.dir, names, sizeof names), 0);
    temp_cleanup(&td);
    fixture_free(&f);
}
END_TEST

START_TEST(test_failed_save_leaves_the_old_checkpoint_intact) {
    Fixture f;
    tiny_fixture(&f);
    TempDir td;
    temp_dir(&td);
    const char *path = temp_path(&td, "ck.bin");
    save_ok(&f, false, path);
    size_t n_old;
    unsigned char *old = slurp(path, &n_old);

    // A file size limit between the old file's size and the new one's: the write fails with
    // EFBIG (SIGXFSZ ignored, as main does) part way through the new file.
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    struct rlimit lim, small;
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &lim), 0);
    small = lim;
    small.rlim_cur = n_old + 500;
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &small), 0);
    f.m.params[0] = 1.5f;
    char err[512] = "";
    bool ok = train_checkpoint_save(path, &f.m, f.tok, &f.opt, &f.tc, &f.ts, err, sizeof err);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    signal(SIGXFSZ, prev);

    ck_assert(!ok);
    char expected[256];
    snprintf(expected, sizeof expected, "cannot write '%s.tmp.%ld': File too large", path, (long)getpid());
    ck_assert_str_eq(err, expected);
    size_t n_now;
    unsigned char *now = slurp(path, &n_now);
    ck_assert_uint_eq(n_now, n_old);
    ck_assert_mem_eq(now, old, n_old);
    char names[256];
    ck_assert_int_eq(dir_list(td.dir, names, sizeof names), 1);  // no temporary file behind
    ck_assert_str_eq(names, "ck.bin");
    free(now);
    free(old);
    temp_cleanup(&td);
    fixture_free(&f);
}
END_TEST

START_TEST(test_save_onto_a_directory_fails_and_leaves_no_temp_file) {
    Fixture f;
    tiny_fixture(&f);
    TempDir td;
    temp_dir(&td);
    const char *path = temp_path(&td, "adir");
    ck_assert_int_eq(mkdir(path, 0755), 0);
    char err[512] = "";
    ck_assert(!checkpoint_save(path, &f.m, f.tok, NULL, err, sizeof err));
    ck_assert_msg(strstr(err, "cannot rename") != NULL, "%s", err);
    char names[256];
    ck_assert_int_eq(dir_list(td.dir, names, sizeof names), 1);
    ck_assert_str_eq(names, "adir");
    temp_cleanup(&td);
    fixture_free(&f);
}
END_TEST

// ---------------------------------------------------------------------------------------------
// `gpt info`. Each run is a child process: the command may exit rather than return, and its
// stdout and stderr go to files.

typedef struct {
    int status;
    char *out, *err;
} InfoResult;

static InfoResult run_info(TempDir *td, const char **args) {
    char out_path[128], err_path[128];
    snprintf(out_path, sizeof out_path, "%s/stdout", td->dir);
    snprintf(err_path, sizeof err_path, "%s/stderr", td->dir);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        char *argv[16];
        int argc = 0;
        argv[argc++] = "info";
        while (argc < 15 && args[argc - 1]) argv[argc] = (char *)args[argc - 1], argc++;
        argv[argc] = NULL;
        int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (out < 0 || err < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0) _exit(99);
        exit(cmd_info(argc, argv));
    }
    int wstatus;
    ck_assert_int_eq(waitpid(pid, &wstatus, 0), pid);
    ck_assert_msg(WIFEXITED(wstatus), "gpt info died of signal %d", WTERMSIG(wstatus));
    InfoResult r = {.status = WEXITSTATUS(wstatus)};
    size_t n;
    r.out = (char *)slurp(out_path, &n);
    r.err = (char *)slurp(err_path, &n);
    unlink(out_path);
    unlink(err_path);
    return r;
}

static void assert_info_fails(TempDir *td, const char **args, const char *reason) {
    InfoResult r = run_info(td, args);
    ck_assert_msg(r.status != 0, "exit status 0; stdout: %s", r.out);
    ck_assert_str_eq(r.out, "");
    ck_assert_msg(strncmp(r.err, "error: ", 7) == 0, "stderr: '%s'", r.err);
    ck_assert_msg(strstr(r.err, reason) != NULL, "'%s' does not say '%s'", r.err, reason);
    ck_assert_ptr_eq(strchr(r.err, '\n'), r.err + strlen(r.err) - 1);  // one line
    free(r.out);
    free(r.err);
}

static void assert_has(const char *text, const char *what) {
    ck_assert_msg(strstr(text, what) != NULL, "no '%s' in:\n%s", what, text);
}

START_TEST(test_info_describes_a_checkpoint) {
    Fixture f;
    tiny_fixture(&f);
    TempDir td;
    temp_dir(&td);
    const char *path = temp_path(&td, "ck.bin");
    save_ok(&f, true, path);
    const char *args[] = {path, NULL};
    InfoResult r = run_info(&td, args);
    ck_assert_msg(r.status == 0, "%s", r.err);
    ck_assert_str_eq(r.err, "");
    assert_has(r.out, path);
    assert_has(r.out, "version 3");
    assert_has(r.out, "optimizer       muon");
    assert_has(r.out, "muon_momentum   0.85");
    assert_has(r.out, "n_layer 1, n_head 2, n_embd 4, head size 2, block_size 4, vocab_size 5");
    assert_has(r.out, "char, 5 tokens");
    assert_has(r.out, "training state:  yes");
    assert_has(r.out, "17 of 500");
    assert_has(r.out, "2.5000 at step 10");
    assert_has(r.out, "1:02:03 (3723.");
    assert_has(r.out, "data/some text with spaces.txt");
    assert_has(r.out, "5000000000 bytes, crc32c deadbeef");
    // Every setting, by its name in TrainConfig.
    assert_has(r.out, "\nsettings:\n");
    assert_has(r.out, "  out_dir         runs/tiny\n");
    assert_has(r.out, "  model           n_layer 1, n_head 2, n_embd 4, block_size 4, vocab_size 5, features none\n");
    assert_has(r.out, "  batch_size      3\n");
    assert_has(r.out, "  zero_init_proj  1\n");
    assert_has(r.out, "  lr              0.0003\n");
    assert_has(r.out, "  lr_decay_iters  450\n");
    assert_has(r.out, "  weight_decay    0.05\n");
    assert_has(r.out, "  grad_clip       0.5\n");
    assert_has(r.out, "  grad_accum      2\n");
    assert_has(r.out, "  sample_interval 0\n");
    assert_has(r.out, "  seed            18364758544493064720\n");
    assert_has(r.out, "  tokenizer       bpe\n");
    assert_has(r.out, "  bpe_vocab_size  777\n");
    assert_has(r.out, "h.0.w_q");
    assert_has(r.out, "h.0.w_o");
    assert_has(r.out, "4x4");
    assert_has(r.out, "total");
    assert_has(r.out, "240");
    free(r.out);
    free(r.err);

    save_ok(&f, false, path);
    r = run_info(&td, args);
    ck_assert_msg(r.status == 0, "%s", r.err);
    assert_has(r.out, "training state:  no");
    free(r.out);
    free(r.err);

    const char *help[] = {"--help", NULL};
    r = run_info(&td, help);
    ck_assert_int_eq(r.status, 0);
    ck_assert_msg(strncmp(r.out, "usage: gpt info", 15) == 0, "%s", r.out);
    free(r.out);
    free(r.err);
    temp_cleanup(&td);
    fixture_free(&f);
}
END_TEST

START_TEST(test_info_rejects_bad_input_with_one_line) {
    TempDir td;
    temp_dir(&td);
    const char *none[] = {NULL};
    assert_info_fails(&td, none, "expected a checkpoint file");
    const char *extra[] = {"a.bin", "b.bin", NULL};
    assert_info_fails(&td, extra, "unexpected argument 'b.bin'");
    const char *flag[] = {"--frobnicate", "a.bin", NULL};
    assert_info_fails(&td, flag, "unknown option '--frobnicate'");
    const char *missing[] = {temp_path(&td, "missing.bin"), NULL};
    assert_info_fails(&td, missing, "cannot open");
    write_bytes(temp_path(&td, "empty.bin"), "", 0);
    const char *empty[] = {temp_path(&td, "empty.bin"), NULL};
    assert_info_fails(&td, empty, "is empty, expected a gpt checkpoint");
    temp_cleanup(&td);
}
END_TEST

Suite *checkpoint_suite(void) {
    Suite *s = suite_create("checkpoint");
    TCase *tc = tcase_create("round trip");
    tcase_add_test(tc, test_round_trip_without_training_state);
    tcase_add_test(tc, test_round_trip_with_training_state);
    tcase_add_test(tc, test_round_trip_larger_than_the_write_buffer);
    tcase_add_test(tc, test_training_records_travel_as_bytes);
    tcase_add_test(tc, test_saved_file_starts_with_magic_and_version);
    tcase_add_test(tc, test_settings_record_keeps_its_byte_layout);
    tcase_add_test(tc, test_saving_over_a_checkpoint_replaces_it);
    suite_add_tcase(s, tc);

    tc = tcase_create("damage");
    tcase_add_test(tc, test_load_missing_empty_directory_and_foreign_files_fail);
    tcase_add_test(tc, test_load_newer_version_fails);
    tcase_add_test(tc, test_load_every_truncation_fails);
    tcase_add_test(tc, test_load_every_bit_flip_fails);
    suite_add_tcase(s, tc);

    tc = tcase_create("malformed");
    tcase_add_test(tc, test_load_corrupt_tokenizer_with_valid_crc_fails);
    tcase_add_test(tc, test_load_tokenizer_vocab_mismatch_fails);
    tcase_add_test(tc, test_load_bad_config_fails);
    tcase_add_test(tc, test_load_param_count_mismatch_fails);
    tcase_add_test(tc, test_load_non_finite_values_fail);
    tcase_add_test(tc, test_load_bad_training_settings_fail);
    tcase_add_test(tc, test_load_unknown_duplicate_missing_and_oversized_sections_fail);
    suite_add_tcase(s, tc);

    tc = tcase_create("atomic save");
    tcase_add_test(tc, test_save_into_missing_directory_fails_and_creates_nothing);
    tcase_add_test(tc, test_failed_save_leaves_the_old_checkpoint_intact);
    tcase_add_test(tc, test_save_onto_a_directory_fails_and_leaves_no_temp_file);
    suite_add_tcase(s, tc);

    tc = tcase_create("info");
    tcase_add_test(tc, test_info_describes_a_checkpoint);
    tcase_add_test(tc, test_info_rejects_bad_input_with_one_line);
    suite_add_tcase(s, tc);
    return s;
}
