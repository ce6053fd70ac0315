/*
 * harness.c - runs the fast kernels against the reference ones on every case of
 * cases.bin (written by gen_vectors.py, format there) and compares every output
 * byte (the convolutions with the case's pad_value, the code their padding reads).
 * Also checks that the fast kernels write nothing past their output and scratch
 * buffers and leave their input alone.  Builds for the host and for the
 * Cortex-M targets (files through targets/common/ec_platform.h: stdio or
 * semihosting).  Prints "kernels: N passed, M failed"; exits 0 only if M = 0.
 */
#include <string.h>

#include "ec_platform.h"

#include "ec_conv2d.h"
#include "ec_conv2d_grouped.h"
#include "ec_conv2d_fast.h"
#include "ec_depthwise_fast.h"
#include "ec_elementwise.h"
#include "ec_elementwise_mve.h"
#include "ec_linear.h"
#include "ec_linear_fast.h"
#include "ec_pool2d.h"
#include "ec_pool2d_fast.h"
#include "ec_recurrent.h"

#ifndef EC_MAX_BYTES
#define EC_MAX_BYTES 1536 /* gen_vectors.DEFAULT_MAX_BYTES */
#endif
#ifndef EC_MAX_SCRATCH
#define EC_MAX_SCRATCH 2048 /* gen_vectors.MAX_SCRATCH */
#endif
#define EC_MAX_CHANNELS 128
#define EC_GUARD 16 /* bytes checked past each written buffer */
#define EC_HEADER_FIELDS 31

enum { OP_CONV = 1, OP_LINEAR = 2, OP_MAXPOOL = 3, OP_AVGPOOL = 4, OP_POINTWISE = 5, OP_GROUPED = 6,
       OP_ADD = 7 /* in_c elements; b after a; mult_a, shift_a, mult_b, shift_b, shift_out in the
                     stride_h, stride_w, pad_top, pad_left, scale_shift fields; zero points in
                     zero_a, zero_b, zero_y */,
       OP_LINEAR16 = 8 /* a linear layer with int16 outputs (2 * out_c bytes) */,
       OP_DUAL = 9 /* a recurrent gate: in_c = na, in_h = nb, down_a, down_b in stride_h, stride_w, shift_out
                      in scale_shift, a table when groups = 1 (gen_vectors.dual_case) */,
       OP_MUL = 10 /* a same-shape product of in_c elements: b after a, shift in scale_shift */,
       OP_GATED = 11 /* a GRU's n gate: as OP_DUAL, the input a, b then the gate (out_c values), bias_a then
                        bias_b, down_a, down_p in stride_h, stride_w, shift_b in pad_top (gen_vectors.gated_case) */,
       OP_LERP = 12 /* a GRU's update over in_c elements: a, b then g; shift_a, shift_b, shift_g in stride_h,
                       stride_w, pad_top, shift_out in scale_shift */ };
enum {
    F_OP, F_IN_C, F_IN_H, F_IN_W, F_OUT_C, F_K_H, F_K_W, F_STRIDE_H, F_STRIDE_W, F_PAD_TOP, F_PAD_LEFT, F_OUT_H,
    F_OUT_W, F_ACT_MIN, F_ACT_MAX, F_PER_CHANNEL, F_HAS_BIAS, F_FOLDED, F_INCLUDE_PAD, F_SCALE_SHIFT, F_SCRATCH,
    F_MISALIGN, F_DILATION_H, F_DILATION_W, F_GROUPS, F_OFFSET, F_ZERO_A, F_ZERO_B, F_ZERO_Y, F_PAD_VALUE,
    F_EXPECTED /* the simulator's output follows (into packed_buf, unused by adds and pools) */
};

/* Word-aligned buffers (the generated code aligns weights and the arena the same way). */
static union { int32_t align; int8_t b[EC_MAX_BYTES]; } in_copy, weight_buf, packed_buf;
static union { int32_t align; int8_t b[EC_MAX_BYTES + 4]; } in_buf; /* + F_MISALIGN bytes */
static union { int32_t align; int8_t b[EC_MAX_BYTES + EC_GUARD]; } ref_out, fast_out;
static union { int32_t align; int8_t b[EC_MAX_SCRATCH + EC_GUARD]; } scratch;
static int32_t bias_buf[EC_MAX_CHANNELS]; /* a gated linear's two biases: out_c <= EC_MAX_CHANNELS / 2 */
static union { int32_t align; int8_t b[EC_MAX_CHANNELS]; } shift_buf;
static int32_t header[EC_HEADER_FIELDS];
/* A dual linear (no scratch, so only the guard's first EC_GUARD bytes of `scratch` are written) keeps its
 * expected output and its table in `scratch` past the guard: the M0+ machine's 16 KiB hold no more buffers. */
#define EC_DUAL_EXPECTED (scratch.b + 64)  /* out_c <= EC_MAX_CHANNELS bytes */
#define EC_DUAL_TABLE (scratch.b + 256)    /* 256 bytes */

/* One line: label v label2 v2 suffix (numbers in decimal). */
static void put_line(const char *label, long v, const char *label2, long v2, const char *suffix)
{
    char text[96];
    char digits[12];
    int i = 0, n, k;
    const char *parts[2];
    long vals[2];
    parts[0] = label;
    parts[1] = label2;
    vals[0] = v;
    vals[1] = v2;
    for (k = 0; k < 2 && parts[k] != 0; ++k) {
        unsigned long u = vals[k] < 0 ? (unsigned long)(-vals[k]) : (unsigned long)vals[k];
        const char *s = parts[k];
        while (*s != '\0' && i < 60) {
            text[i++] = *s++;
        }
        if (vals[k] < 0) {
            text[i++] = '-';
        }
        n = 0;
        do {
            digits[n++] = (char)('0' + u % 10u);
            u /= 10u;
        } while (u != 0u && n < 11);
        while (n > 0) {
            text[i++] = digits[--n];
        }
    }
    while (*suffix != '\0' && i < 94) {
        text[i++] = *suffix++;
    }
    text[i] = '\0';
    ec_platform_puts(text);
}

static int read_exact(int h, void *buf, long n)
{
    long padded = (n + 3) & ~3L;
    return ec_platform_read(h, buf, (unsigned long)padded) == padded;
}

static void fill(int8_t *p, long n, int8_t v)
{
    long i;
    for (i = 0; i < n; ++i) {
        p[i] = v;
    }
}

/* The first differing index of a and b over n bytes, or -1. */
static long first_difference(const int8_t *a, const int8_t *b, long n)
{
    long i;
    for (i = 0; i < n; ++i) {
        if (a[i] != b[i]) {
            return i;
        }
    }
    return -1;
}

/* Runs one case; returns 0 when the fast kernel matches, else a reason code. */
static int run_case(int h)
{
    const int op = header[F_OP];
    const int gated = op == OP_GATED, dual = op == OP_DUAL || gated; /* gated: laid out as a dual linear */
    const long in_n = dual          ? (long)header[F_IN_C] + header[F_IN_H] + (gated ? header[F_OUT_C] : 0)
                      : op == OP_LERP ? 3L * header[F_IN_C]
                                      : (long)header[F_IN_C] * header[F_IN_H] * header[F_IN_W];
    const int linear = op == OP_LINEAR || op == OP_LINEAR16;
    const long out_n = op == OP_ADD || op == OP_MUL || op == OP_LERP ? header[F_IN_C]
                       : dual                       ? header[F_OUT_C]
                       : op == OP_LINEAR16 ? 2L * header[F_OUT_C]
                       : op == OP_LINEAR   ? header[F_OUT_C]
                                           : (long)header[F_OUT_C] * header[F_OUT_H] * header[F_OUT_W];
    const int weighted = op == OP_CONV || linear || op == OP_POINTWISE || op == OP_GROUPED || dual;
    const long c_per_group = op == OP_GROUPED ? header[F_IN_C] / header[F_GROUPS] : header[F_IN_C];
    const long k_all = linear ? header[F_IN_C]
                       : dual ? (long)header[F_IN_C] + header[F_IN_H]
                              : c_per_group * header[F_K_H] * header[F_K_W];
    const long w_n = (long)header[F_OUT_C] * k_all;
    const long wa_n = (long)header[F_OUT_C] * header[F_IN_C];   /* a dual linear's Wa */
    const long wb_packed = dual ? (wa_n + 3) & ~3L : 0;          /* its packed Wb: word-aligned */
    const long packed_n = dual ? wb_packed + (w_n - wa_n) : w_n;
    int8_t *expected = dual ? EC_DUAL_EXPECTED : packed_buf.b;
    const long scratch_n = header[F_SCRATCH];
    const int32_t *bias = header[F_HAS_BIAS] ? bias_buf : (const int32_t *)0;
    int8_t *in = in_buf.b + (header[F_MISALIGN] & 3); /* inputs need not be word-aligned */
    long i;
    if (in_n > EC_MAX_BYTES || out_n > EC_MAX_BYTES || scratch_n > EC_MAX_SCRATCH ||
        header[F_OUT_C] > (gated ? EC_MAX_CHANNELS / 2 : EC_MAX_CHANNELS) ||
        (weighted && packed_n > EC_MAX_BYTES)) {
        return 90; /* the generator and this harness disagree on sizes */
    }
    if (!read_exact(h, in, in_n)) {
        return 91;
    }
    if (weighted) {
        if (!read_exact(h, weight_buf.b, w_n) || !read_exact(h, packed_buf.b, packed_n) ||
            (header[F_HAS_BIAS] && !read_exact(h, bias_buf, (gated ? 8L : 4L) * header[F_OUT_C])) ||
            !read_exact(h, shift_buf.b, header[F_PER_CHANNEL] ? header[F_OUT_C] : 1)) {
            return 91;
        }
    }
    if ((op == OP_ADD || op == OP_MUL) && !read_exact(h, weight_buf.b, in_n)) { /* the second operand */
        return 91;
    }
    if (dual && header[F_GROUPS] && !read_exact(h, EC_DUAL_TABLE, 256)) {
        return 91;
    }
    if (header[F_EXPECTED] && ((weighted && !dual) || !read_exact(h, expected, out_n))) {
        return 91;
    }
    for (i = 0; i < in_n; ++i) {
        in_copy.b[i] = in[i];
    }
    fill(ref_out.b, out_n + EC_GUARD, 0x5A);
    fill(fast_out.b, out_n + EC_GUARD, 0x5A);
    fill(scratch.b, scratch_n + EC_GUARD, 0x3C);
    switch (op) {
    case OP_CONV:
        if (scratch_n != ec_conv2d_fast_scratch(header[F_IN_C], header[F_IN_H], header[F_IN_W], header[F_OUT_C],
                                                header[F_K_H], header[F_K_W], header[F_STRIDE_H], header[F_STRIDE_W],
                                                header[F_PAD_TOP], header[F_PAD_LEFT], header[F_OUT_H],
                                                header[F_OUT_W])) {
            return 5; /* Python's conv_scratch_bytes and C's ec_conv2d_fast_scratch disagree */
        }
        ec_conv2d_s8(in, header[F_IN_C], header[F_IN_H], header[F_IN_W], weight_buf.b, bias, shift_buf.b,
                     header[F_PER_CHANNEL], header[F_OUT_C], header[F_K_H], header[F_K_W], header[F_STRIDE_H],
                     header[F_STRIDE_W], header[F_PAD_TOP], header[F_PAD_LEFT], header[F_PAD_VALUE], ref_out.b,
                     header[F_OUT_H], header[F_OUT_W], header[F_ACT_MIN], header[F_ACT_MAX]);
        ec_conv2d_fast_s8(in, header[F_IN_C], header[F_IN_H], header[F_IN_W], packed_buf.b, bias, shift_buf.b,
                          header[F_PER_CHANNEL], header[F_OUT_C], header[F_K_H], header[F_K_W], header[F_STRIDE_H],
                          header[F_STRIDE_W], header[F_PAD_TOP], header[F_PAD_LEFT], header[F_PAD_VALUE], fast_out.b,
                          header[F_OUT_H], header[F_OUT_W], header[F_ACT_MIN], header[F_ACT_MAX], header[F_FOLDED],
                          scratch.b);
        break;
    case OP_POINTWISE:
        if (scratch_n != ec_conv2d_1x1_fast_scratch(header[F_IN_C], header[F_OUT_C])) {
            return 5; /* Python's pointwise_scratch_bytes and C's ec_conv2d_1x1_fast_scratch disagree */
        }
        ec_conv2d_s8(in, header[F_IN_C], header[F_IN_H], header[F_IN_W], weight_buf.b, bias, shift_buf.b,
                     header[F_PER_CHANNEL], header[F_OUT_C], 1, 1, header[F_STRIDE_H], header[F_STRIDE_W], 0, 0,
                     header[F_PAD_VALUE], ref_out.b, header[F_OUT_H], header[F_OUT_W], header[F_ACT_MIN],
                     header[F_ACT_MAX]); /* 1x1 windows without padding: pad_value is never read */
        ec_conv2d_1x1_fast_s8(in, header[F_IN_C], header[F_IN_H], header[F_IN_W], packed_buf.b, bias, shift_buf.b,
                              header[F_PER_CHANNEL], header[F_OUT_C], header[F_STRIDE_H], header[F_STRIDE_W],
                              fast_out.b, header[F_OUT_H], header[F_OUT_W], header[F_ACT_MIN], header[F_ACT_MAX],
                              header[F_FOLDED], scratch.b);
        break;
    case OP_GROUPED: /* depthwise and grouped; the weights keep their logical order; depthwise
                       without dilation runs the Helium kernel on cores with MVE */
        if (scratch_n != ec_conv2d_grouped_fast_scratch(header[F_IN_C], header[F_GROUPS], header[F_OUT_H],
                                                        header[F_OUT_W], header[F_K_H], header[F_K_W],
                                                        header[F_STRIDE_H], header[F_STRIDE_W], header[F_DILATION_H],
                                                        header[F_DILATION_W])) {
            return 5; /* Python's grouped_scratch_bytes and C's ec_conv2d_grouped_fast_scratch disagree */
        }
        ec_conv2d_grouped_s8(in, header[F_IN_C], header[F_IN_H], header[F_IN_W], weight_buf.b, bias, shift_buf.b,
                             header[F_PER_CHANNEL], header[F_OUT_C], header[F_K_H], header[F_K_W],
                             header[F_STRIDE_H], header[F_STRIDE_W], header[F_PAD_TOP], header[F_PAD_LEFT],
                             header[F_PAD_VALUE], header[F_DILATION_H], header[F_DILATION_W], header[F_GROUPS],
                             ref_out.b, header[F_OUT_H], header[F_OUT_W], header[F_ACT_MIN], header[F_ACT_MAX]);
        ec_conv2d_grouped_fast_s8(in, header[F_IN_C], header[F_IN_H], header[F_IN_W], packed_buf.b, bias,
                                  shift_buf.b, header[F_PER_CHANNEL], header[F_OUT_C], header[F_K_H], header[F_K_W],
                                  header[F_STRIDE_H], header[F_STRIDE_W], header[F_PAD_TOP], header[F_PAD_LEFT],
                                  header[F_PAD_VALUE], header[F_DILATION_H], header[F_DILATION_W], header[F_GROUPS],
                                  fast_out.b, header[F_OUT_H], header[F_OUT_W], header[F_ACT_MIN], header[F_ACT_MAX],
                                  header[F_FOLDED], scratch_n > 0 ? scratch.b : (int8_t *)0);
        break;
    case OP_ADD:
        ec_add_s8(in, weight_buf.b, ref_out.b, header[F_IN_C], header[F_STRIDE_H], header[F_STRIDE_W],
                  header[F_ZERO_A], header[F_PAD_TOP], header[F_PAD_LEFT], header[F_ZERO_B], header[F_SCALE_SHIFT],
                  header[F_ZERO_Y], header[F_ACT_MIN], header[F_ACT_MAX]);
        ec_add_mve_s8(in, weight_buf.b, fast_out.b, header[F_IN_C], header[F_STRIDE_H], header[F_STRIDE_W],
                      header[F_ZERO_A], header[F_PAD_TOP], header[F_PAD_LEFT], header[F_ZERO_B],
                      header[F_SCALE_SHIFT], header[F_ZERO_Y], header[F_ACT_MIN], header[F_ACT_MAX]);
        break;
    case OP_LINEAR:
        ec_linear_s8(in, header[F_IN_C], weight_buf.b, bias, shift_buf.b, header[F_PER_CHANNEL],
                     header[F_OUT_C], ref_out.b, header[F_ACT_MIN], header[F_ACT_MAX]);
        ec_linear_fast_s8(in, header[F_IN_C], packed_buf.b, bias, shift_buf.b, header[F_PER_CHANNEL],
                          header[F_OUT_C], fast_out.b, header[F_ACT_MIN], header[F_ACT_MAX], header[F_FOLDED]);
        break;
    case OP_LINEAR16:
        ec_linear_any(in, 1, header[F_IN_C], weight_buf.b, bias, shift_buf.b, header[F_PER_CHANNEL],
                      header[F_OUT_C], ref_out.b, 2, header[F_ACT_MIN], header[F_ACT_MAX]);
        ec_linear_fast_s8_s16(in, header[F_IN_C], packed_buf.b, bias, shift_buf.b, header[F_PER_CHANNEL],
                              header[F_OUT_C], fast_out.b + 1, header[F_ACT_MIN], header[F_ACT_MAX],
                              header[F_FOLDED]); /* at an odd address: the caller's buffer may be anywhere */
        memmove(fast_out.b, fast_out.b + 1, (size_t)out_n);
        fast_out.b[out_n] = 0x5A;
        break;
    case OP_DUAL:
        ec_dual_linear_s8(in, header[F_IN_C], weight_buf.b, header[F_STRIDE_H], in + header[F_IN_C], header[F_IN_H],
                          weight_buf.b + wa_n, header[F_STRIDE_W], bias, header[F_OUT_C], header[F_SCALE_SHIFT],
                          ref_out.b, header[F_ACT_MIN], header[F_ACT_MAX]);
        if (header[F_GROUPS]) { /* the reference's table lookup, as ec_lut_s8 does it */
            for (i = 0; i < out_n; ++i) {
                ref_out.b[i] = EC_DUAL_TABLE[ref_out.b[i] + 128];
            }
        }
        ec_dual_linear_fast_s8(in, header[F_IN_C], packed_buf.b, header[F_STRIDE_H], in + header[F_IN_C],
                               header[F_IN_H], packed_buf.b + wb_packed, header[F_STRIDE_W], bias, header[F_OUT_C],
                               header[F_SCALE_SHIFT], fast_out.b, header[F_ACT_MIN], header[F_ACT_MAX],
                               header[F_FOLDED], header[F_GROUPS] ? EC_DUAL_TABLE : (const int8_t *)0);
        break;
    case OP_GATED: {
        const int8_t *b_in = in + header[F_IN_C], *g_in = b_in + header[F_IN_H];
        ec_gated_linear_s8(in, header[F_IN_C], weight_buf.b, header[F_STRIDE_H], bias_buf, b_in, header[F_IN_H],
                           weight_buf.b + wa_n, bias_buf + header[F_OUT_C], header[F_PAD_TOP], g_in,
                           header[F_STRIDE_W], header[F_OUT_C], header[F_SCALE_SHIFT], ref_out.b, header[F_ACT_MIN],
                           header[F_ACT_MAX]);
        if (header[F_GROUPS]) {
            for (i = 0; i < out_n; ++i) {
                ref_out.b[i] = EC_DUAL_TABLE[ref_out.b[i] + 128];
            }
        }
        ec_gated_linear_fast_s8(in, header[F_IN_C], packed_buf.b, header[F_STRIDE_H], bias_buf, b_in,
                                header[F_IN_H], packed_buf.b + wb_packed, bias_buf + header[F_OUT_C],
                                header[F_PAD_TOP], g_in, header[F_STRIDE_W], header[F_OUT_C], header[F_SCALE_SHIFT],
                                fast_out.b, header[F_ACT_MIN], header[F_ACT_MAX], header[F_FOLDED],
                                header[F_GROUPS] ? EC_DUAL_TABLE : (const int8_t *)0);
        break;
    }
    case OP_LERP: {
        const long n = header[F_IN_C];
        ec_lerp_s8(in, in + n, in + 2 * n, ref_out.b, (int)n, header[F_STRIDE_H], header[F_STRIDE_W],
                   header[F_PAD_TOP], header[F_SCALE_SHIFT], header[F_ACT_MIN], header[F_ACT_MAX]);
        ec_lerp_mve_s8(in, in + n, in + 2 * n, fast_out.b, (int)n, header[F_STRIDE_H], header[F_STRIDE_W],
                       header[F_PAD_TOP], header[F_SCALE_SHIFT], header[F_ACT_MIN], header[F_ACT_MAX],
                       header[F_FOLDED]);
        break;
    }
    case OP_MUL:
        ec_mul_s8(in, header[F_ZERO_A], weight_buf.b, header[F_ZERO_B], ref_out.b, 1, header[F_IN_C], 0, 1,
                  header[F_SCALE_SHIFT], header[F_ACT_MIN], header[F_ACT_MAX]);
        ec_mul_mve_s8(in, header[F_ZERO_A], weight_buf.b, header[F_ZERO_B], fast_out.b, 1, header[F_IN_C], 0, 1,
                      header[F_SCALE_SHIFT], header[F_ACT_MIN], header[F_ACT_MAX]);
        break;
    case OP_MAXPOOL:
        ec_maxpool2d_s8(in, header[F_IN_C], header[F_IN_H], header[F_IN_W], header[F_K_H], header[F_K_W],
                        header[F_STRIDE_H], header[F_STRIDE_W], header[F_PAD_TOP], header[F_PAD_LEFT], ref_out.b,
                        header[F_OUT_H], header[F_OUT_W]);
        ec_maxpool2d_fast_s8(in, header[F_IN_C], header[F_IN_H], header[F_IN_W], header[F_K_H], header[F_K_W],
                             header[F_STRIDE_H], header[F_STRIDE_W], header[F_PAD_TOP], header[F_PAD_LEFT],
                             fast_out.b, header[F_OUT_H], header[F_OUT_W]);
        break;
    case OP_AVGPOOL:
        ec_avgpool2d_s8(in, header[F_IN_C], header[F_IN_H], header[F_IN_W], header[F_K_H], header[F_K_W],
                        header[F_STRIDE_H], header[F_STRIDE_W], header[F_PAD_TOP], header[F_PAD_LEFT], ref_out.b,
                        header[F_OUT_H], header[F_OUT_W], header[F_INCLUDE_PAD], header[F_SCALE_SHIFT],
                        header[F_OFFSET]);
        ec_avgpool2d_fast_s8(in, header[F_IN_C], header[F_IN_H], header[F_IN_W], header[F_K_H], header[F_K_W],
                             header[F_STRIDE_H], header[F_STRIDE_W], header[F_PAD_TOP], header[F_PAD_LEFT],
                             fast_out.b, header[F_OUT_H], header[F_OUT_W], header[F_INCLUDE_PAD],
                             header[F_SCALE_SHIFT], header[F_OFFSET]);
        break;
    default:
        return 92;
    }
    if (header[F_EXPECTED]) {
        i = first_difference(ref_out.b, expected, out_n);
        if (i >= 0) {
            put_line("  first output byte off the simulator's: ", i, " of ", out_n, "");
            put_line("  simulator: ", expected[i], " reference: ", ref_out.b[i], "");
            return 6; /* the reference kernel and the simulator disagree */
        }
    }
    i = first_difference(ref_out.b, fast_out.b, out_n + EC_GUARD);
    if (i >= 0) {
        put_line("  first differing output byte: ", i, " of ", out_n, "");
        put_line("  reference: ", ref_out.b[i], " fast: ", fast_out.b[i], "");
        return i < out_n ? 1 : 2; /* 2: written past the output */
    }
    for (i = scratch_n; i < scratch_n + EC_GUARD; ++i) {
        if (scratch.b[i] != 0x3C) {
            return 3; /* written past the scratch buffer */
        }
    }
    if (first_difference(in, in_copy.b, in_n) >= 0) {
        return 4; /* input modified */
    }
    return 0;
}

int main(void)
{
    long passed = 0, failed = 0, index = 0;
    int h;
    ec_platform_init();
    h = ec_platform_open("cases.bin", 0);
    if (h < 0) {
        ec_platform_puts("harness: cannot open cases.bin in the working directory");
        ec_platform_exit(2);
    }
    while (ec_platform_read(h, header, sizeof header) == (long)sizeof header) {
        const int why = run_case(h);
        if (why == 0) {
            ++passed;
        } else {
            ++failed;
            put_line("FAILED case ", index, " reason ", why, "");
            put_line("  op ", header[F_OP], " out_c ", header[F_OUT_C], "");
            if (why >= 90) {
                break; /* the stream is out of step: stop */
            }
        }
        ++index;
    }
    ec_platform_close(h);
    put_line("kernels: ", passed, " passed, ", failed, " failed");
    ec_platform_exit(failed == 0 && passed > 0 ? 0 : 1);
    return 0;
}
