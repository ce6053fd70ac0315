/*
 * insn_count.c - a QEMU TCG plugin that counts executed guest instructions
 * exactly, for one single-core guest.
 *
 * Arguments (qemu-system-arm -plugin insn_count.so,out=FILE[,mark=ADDR]):
 *   out=FILE   where to write the results (created or truncated)
 *   mark=ADDR  address of ec_profile_mark (hex 0x... or decimal; bit 0, the
 *              Thumb bit, is ignored)
 * FILE gets one line "mark N" each time the guest enters ec_profile_mark,
 * N being the number of instructions executed before that entry, and a last
 * line "total N" when QEMU exits.
 *
 * Every instruction gets an inline "add 1" generated into its translated
 * code, so the count does not depend on how QEMU splits code into blocks,
 * nor on blocks left early by an exception. The marker's first instruction
 * gets a callback instead, which reads the count and then adds that one
 * instruction itself: each recorded value is independent of the order in
 * which QEMU would run an inline add and a callback on the same instruction.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qemu_plugin_api.h"

EC_QEMU_PLUGIN_EXPORT int qemu_plugin_version = EC_QEMU_PLUGIN_VERSION;

#define EC_THUMB_BIT UINT64_C(1)

static uint64_t ec_insn_count; /* one vCPU: no other thread touches it */
static uint64_t ec_mark_addr;
static int ec_have_mark;
static FILE *ec_out;

static void ec_on_mark(unsigned int vcpu_index, void *userdata)
{
    (void)vcpu_index;
    (void)userdata;
    fprintf(ec_out, "mark %" PRIu64 "\n", ec_insn_count);
    ++ec_insn_count;
}

static void ec_on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    size_t n = qemu_plugin_tb_n_insns(tb);
    size_t i;

    (void)id;
    for (i = 0; i < n; ++i) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);

        if (ec_have_mark && qemu_plugin_insn_vaddr(insn) == ec_mark_addr) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, ec_on_mark, QEMU_PLUGIN_CB_NO_REGS, NULL);
        } else {
            qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64,
                                                       &ec_insn_count, 1);
        }
    }
}

static void ec_on_exit(qemu_plugin_id_t id, void *userdata)
{
    (void)id;
    (void)userdata;
    fprintf(ec_out, "total %" PRIu64 "\n", ec_insn_count);
    fclose(ec_out);
    ec_out = NULL;
}

/* The value of argument "name=value", or NULL when arg is another one. */
static const char *ec_arg_value(const char *arg, const char *name)
{
    size_t len = strlen(name);

    return (strncmp(arg, name, len) == 0 && arg[len] == '=') ? arg + len + 1 : NULL;
}

int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
    const char *out_path = NULL;
    int i;

    (void)info;
    for (i = 0; i < argc; ++i) {
        const char *value;

        if ((value = ec_arg_value(argv[i], "out")) != NULL) {
            out_path = value;
        } else if ((value = ec_arg_value(argv[i], "mark")) != NULL) {
            char *end;

            ec_mark_addr = strtoull(value, &end, 0) & ~EC_THUMB_BIT;
            if (*value == '\0' || *end != '\0') {
                fprintf(stderr, "insn_count: bad mark address '%s'\n", value);
                return -1;
            }
            ec_have_mark = 1;
        } else {
            fprintf(stderr, "insn_count: unknown argument '%s' (expected out=FILE, mark=ADDR)\n",
                    argv[i]);
            return -1;
        }
    }
    if (out_path == NULL) {
        fprintf(stderr, "insn_count: missing argument out=FILE\n");
        return -1;
    }
    ec_out = fopen(out_path, "w");
    if (ec_out == NULL) {
        fprintf(stderr, "insn_count: cannot write '%s'\n", out_path);
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, ec_on_translate);
    qemu_plugin_register_atexit_cb(id, ec_on_exit, NULL);
    return 0;
}
