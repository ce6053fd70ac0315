/*
 * qemu_plugin_api.h - the part of QEMU's TCG plugin API (version 1, as in
 * QEMU 4.2 to 7.2) that insn_count.c uses, declared here because Debian ships
 * QEMU without its plugin header. The functions are provided by the QEMU
 * binary that loads the plugin; names, argument types and enum values must
 * match QEMU's exactly (they are its ABI).
 */
#ifndef EC_QEMU_PLUGIN_API_H
#define EC_QEMU_PLUGIN_API_H

#include <stddef.h>
#include <stdint.h>

#define EC_QEMU_PLUGIN_VERSION 1
#define EC_QEMU_PLUGIN_EXPORT __attribute__((visibility("default")))

typedef uint64_t qemu_plugin_id_t;

/* Passed to qemu_plugin_install; only ever handled through a pointer here. */
typedef struct qemu_info_t qemu_info_t;

struct qemu_plugin_tb;   /* a translation block, valid during the translation callback */
struct qemu_plugin_insn; /* one guest instruction of that block */

enum qemu_plugin_cb_flags {
    QEMU_PLUGIN_CB_NO_REGS, /* the callback does not touch guest registers */
    QEMU_PLUGIN_CB_R_REGS,
    QEMU_PLUGIN_CB_RW_REGS
};

enum qemu_plugin_op {
    QEMU_PLUGIN_INLINE_ADD_U64 /* *ptr += imm, generated into the translated code */
};

typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);

/* Exported by the plugin: the API version it was written for, and its entry point. */
extern EC_QEMU_PLUGIN_EXPORT int qemu_plugin_version;
EC_QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                              int argc, char **argv);

/* Provided by QEMU. */
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn,
                                            qemu_plugin_vcpu_udata_cb_t cb,
                                            enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_vcpu_insn_exec_inline(struct qemu_plugin_insn *insn,
                                                enum qemu_plugin_op op, void *ptr, uint64_t imm);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);

#endif /* EC_QEMU_PLUGIN_API_H */
