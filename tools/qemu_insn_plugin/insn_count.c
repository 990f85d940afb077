/*
 * Exact executed-instruction counter for QEMU system emulation (single vCPU boards).
 *
 *   -plugin insn_count.so,marker=0xADDR,out=PATH
 *
 * Every instruction gets an inline 64-bit add at translation time (cheap: no helper call).
 * The instruction at the marker address instead gets an exec callback, which records how many
 * instructions ran *before* it and then counts it itself. Doing the marker's own increment in
 * the callback keeps the recorded value independent of whether QEMU emits inline ops before or
 * after callbacks. At exit, PATH receives one "hit N" line per marker execution and a final
 * "total N" line. Counting happens at instruction start, so an instruction that raises an
 * exception is counted once and the rest of its translation block not at all.
 */
#define _POSIX_C_SOURCE 200809L /* strdup */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qemu_plugin_api.h"

DWS_PLUGIN_EXPORT int qemu_plugin_version = 1;

static uint64_t count;        /* instructions executed so far (inline adds write here) */
static uint64_t marker = UINT64_MAX;
static char *out_path;
static uint64_t *hits;        /* value of count at each marker execution */
static size_t n_hits, cap_hits;

static void marker_exec(unsigned int vcpu_index, void *userdata)
{
    (void)vcpu_index;
    (void)userdata;
    if (n_hits == cap_hits) {
        size_t cap = cap_hits ? 2 * cap_hits : 1024;
        uint64_t *p = realloc(hits, cap * sizeof *p);
        if (p == NULL) {
            qemu_plugin_outs("insn_count: out of memory\n");
            abort();
        }
        hits = p;
        cap_hits = cap;
    }
    hits[n_hits++] = count;
    count++; /* the marker instruction itself (it has no inline add) */
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    size_t i, n = qemu_plugin_tb_n_insns(tb);
    (void)id;
    for (i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        if (qemu_plugin_insn_vaddr(insn) == marker)
            qemu_plugin_register_vcpu_insn_exec_cb(insn, marker_exec, QEMU_PLUGIN_CB_NO_REGS, NULL);
        else
            qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &count, 1);
    }
}

static void at_exit(qemu_plugin_id_t id, void *userdata)
{
    FILE *f;
    size_t i;
    (void)id;
    (void)userdata;
    f = out_path ? fopen(out_path, "w") : stderr;
    if (f == NULL) {
        qemu_plugin_outs("insn_count: cannot open the out= file\n");
        return;
    }
    for (i = 0; i < n_hits; i++)
        fprintf(f, "hit %" PRIu64 "\n", hits[i]);
    fprintf(f, "total %" PRIu64 "\n", count);
    if (f != stderr)
        fclose(f);
}

DWS_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const struct qemu_info_t *info, int argc,
                                          char **argv)
{
    int i;
    (void)info;
    for (i = 0; i < argc; i++) {
        if (strncmp(argv[i], "marker=", 7) == 0) {
            char *end;
            marker = strtoull(argv[i] + 7, &end, 0);
            if (*end != '\0' || end == argv[i] + 7) {
                qemu_plugin_outs("insn_count: marker= needs an address like 0x1234\n");
                return -1;
            }
        } else if (strncmp(argv[i], "out=", 4) == 0) {
            out_path = strdup(argv[i] + 4);
        } else {
            qemu_plugin_outs("insn_count: unknown argument (expected marker=ADDR, out=PATH)\n");
            return -1;
        }
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
