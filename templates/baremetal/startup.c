/*
 * Bare-metal startup for the QEMU MPS2/MPS3 Cortex-M boards (AN385/386/500/505/547).
 *
 * Linked with -nostartfiles and --specs=rdimon.specs: newlib's rdimon turns stdio and
 * fopen/fread/fwrite into Arm semihosting calls that QEMU serves from the host, relative
 * to QEMU's working directory. This file replaces crt0: it owns the vector table, copies
 * .data, zeroes .bss, turns the FPU (and MVE) on, fetches argv through SYS_GET_CMDLINE,
 * and turns every fault into a message plus a non-zero exit, so a broken program never hangs
 * the verifier. The memory layout comes from the per-board linker script (mps*.ld).
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Symbols defined by the linker script (cortexm_sections.ld). */
extern uint32_t __data_load__[], __data_start__[], __data_end__[];
extern uint32_t __bss_start__[], __bss_end__[];
extern char __heap_start__[], __heap_end__[];
extern uint32_t __stack_bottom__[], __stack_top__[];

extern int main(int argc, char **argv);
extern void initialise_monitor_handles(void);

void Reset_Handler(void);
void Fault_Handler(void);

/* Exit code of a program killed by a fault; 128 + SIGABRT, like a crashed host process. */
#define DWS_FAULT_EXIT_CODE 134

/* ---- semihosting (Arm semihosting spec v2; BKPT 0xAB is the M-profile trap) ---- */
#define SYS_WRITE0 0x04
#define SYS_GET_CMDLINE 0x15
#define SYS_EXIT 0x18
#define SYS_EXIT_EXTENDED 0x20
#define ADP_Stopped_ApplicationExit 0x20026

static int semihost(int op, void *arg)
{
    register int r0 __asm__("r0") = op;
    register void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

/* Exit with a status code; SYS_EXIT_EXTENDED carries the code on AArch32 (QEMU >= 4.1). */
static void semihost_exit(int code)
{
    uint32_t block[2] = {ADP_Stopped_ApplicationExit, (uint32_t)code};
    semihost(SYS_EXIT_EXTENDED, block);
    semihost(SYS_EXIT, (void *)ADP_Stopped_ApplicationExit); /* host without the extension */
    for (;;) {
    }
}

/* ---- system control block registers used here ---- */
#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)
#define SCB_CCR (*(volatile uint32_t *)0xE000ED14u)
#define SCB_SHCSR (*(volatile uint32_t *)0xE000ED24u)
#define SCB_CFSR (*(volatile uint32_t *)0xE000ED28u)
#define SCB_HFSR (*(volatile uint32_t *)0xE000ED2Cu)
#define SCB_MMFAR (*(volatile uint32_t *)0xE000ED34u)
#define SCB_BFAR (*(volatile uint32_t *)0xE000ED38u)

/* ---- argv from the semihosting command line (QEMU: -semihosting-config arg=...) ---- */
#define MAX_ARGS 32
static char cmdline[4096];
static char *argv_buf[MAX_ARGS + 1];

static int fetch_argv(void)
{
    struct { char *buf; uint32_t len; } block = {cmdline, sizeof cmdline - 1};
    int argc = 0;
    char *p = cmdline;
    if (semihost(SYS_GET_CMDLINE, &block) != 0)
        return 0;
    cmdline[block.len] = '\0';
    /* The host joins arguments with spaces, so arguments cannot contain spaces. */
    while (*p != '\0' && argc < MAX_ARGS) {
        while (*p == ' ')
            *p++ = '\0';
        if (*p == '\0')
            break;
        argv_buf[argc++] = p;
        while (*p != '\0' && *p != ' ')
            p++;
    }
    argv_buf[argc] = NULL;
    return argc;
}

/* newlib's rdimon _sbrk only grows the heap below the stack pointer; our heap lives in its own
 * region (see the linker script), so this strong definition replaces the weak library one. */
void *_sbrk(ptrdiff_t incr)
{
    static char *brk = __heap_start__;
    char *prev = brk;
    if (incr > __heap_end__ - brk || incr < __heap_start__ - brk) {
        errno = ENOMEM;
        return (void *)-1;
    }
    brk += incr;
    return prev;
}

/* -nostartfiles drops crti.o, which normally defines these; newlib's __libc_init_array and
 * exit()'s __libc_fini_array still call them. */
void _init(void);
void _fini(void);
void _init(void) {}
void _fini(void) {}
extern void __libc_init_array(void);

void Reset_Handler(void)
{
    int argc;
#if defined(__ARM_FP) || defined(__ARM_FEATURE_MVE)
    /* Full access to CP10/CP11: the FPU, and on Armv8.1-M also MVE (Helium). First, because
     * the library memcpy/memset below are built for the hard-float ABI and may touch FP regs. */
    SCB_CPACR |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
    /* .data is loaded in the code region and copied; .bss zeroed (QEMU RAM happens to be
     * zero, but a real part's is not, and a second run must not see stale values). */
    memcpy(__data_start__, __data_load__, (size_t)((char *)__data_end__ - (char *)__data_start__));
    memset(__bss_start__, 0, (size_t)((char *)__bss_end__ - (char *)__bss_start__));

#if __ARM_ARCH >= 8
    /* Armv8-M stack limit: an overflow becomes a UsageFault (STKOF) instead of corruption. */
    __asm__ volatile("msr msplim, %0" : : "r"(__stack_bottom__));
#endif
    /* Report MemManage/BusFault/UsageFault as themselves, not escalated to HardFault, and
     * trap integer division by zero (otherwise silently 0 on Cortex-M). */
    SCB_SHCSR |= (1u << 16) | (1u << 17) | (1u << 18);
    SCB_CCR |= 1u << 4;
    __asm__ volatile("dsb\n\tisb" ::: "memory");

    initialise_monitor_handles();
    __libc_init_array(); /* __attribute__((constructor)) functions */
    argc = fetch_argv();
    exit(main(argc, argv_buf)); /* exit() flushes stdio, then newlib's _exit does SYS_EXIT */
}

/* ---- faults: print what happened, exit non-zero. Never returns, never hangs. ---- */
static char fault_msg[256];
static size_t fault_len;

static void put_str(const char *s)
{
    while (*s != '\0' && fault_len < sizeof fault_msg - 1)
        fault_msg[fault_len++] = *s++;
}

static void put_hex(uint32_t v)
{
    int i;
    put_str("0x");
    for (i = 28; i >= 0; i -= 4) {
        char c[2] = {"0123456789abcdef"[(v >> i) & 0xFu], '\0'};
        put_str(c);
    }
}

static const char *const exc_names[] = {"?",        "Reset",      "NMI",        "HardFault",
                                        "MemManage", "BusFault",   "UsageFault", "SecureFault"};

/* Called with the exception frame (if it looks valid) and EXC_RETURN, on a private stack. */
__attribute__((noreturn, used)) static void fault_report(uint32_t *frame, uint32_t exc_return)
{
    uint32_t ipsr;
    __asm__ volatile("mrs %0, ipsr" : "=r"(ipsr));
    ipsr &= 0x1FFu;
    fault_len = 0;
    put_str("\n*** FAULT: ");
    put_str(ipsr < sizeof exc_names / sizeof exc_names[0] ? exc_names[ipsr] : "unexpected IRQ");
    put_str(" (exception ");
    put_hex(ipsr);
    put_str(") pc=");
    /* Only read the stacked frame if it lies inside the stack; a stacking fault leaves it bogus. */
    if (frame >= __stack_bottom__ && frame + 8 <= __stack_top__) {
        put_hex(frame[6]);
        put_str(" lr=");
        put_hex(frame[5]);
    } else {
        put_str("? (stack pointer outside the stack)");
    }
    put_str(" cfsr=");
    put_hex(SCB_CFSR);
    put_str(" hfsr=");
    put_hex(SCB_HFSR);
    put_str(" mmfar=");
    put_hex(SCB_MMFAR);
    put_str(" bfar=");
    put_hex(SCB_BFAR);
    put_str(" exc_return=");
    put_hex(exc_return);
    put_str("\n");
    fault_msg[fault_len] = '\0';
    semihost(SYS_WRITE0, fault_msg); /* QEMU writes this to its stderr */
    semihost_exit(DWS_FAULT_EXIT_CODE);
    for (;;) {
    }
}

/* The faulting code's stack may be the problem, so switch to a private one first. */
__attribute__((used)) static uint64_t fault_stack[64]; /* 512 bytes */

/* Naked: only basic asm is allowed. r0 = stacked frame (MSP or PSP per EXC_RETURN bit 2),
 * r1 = EXC_RETURN, then continue in C on fault_stack. */
__attribute__((naked)) void Fault_Handler(void)
{
    __asm__ volatile("tst lr, #4\n\t"
                     "ite eq\n\t"
                     "mrseq r0, msp\n\t"
                     "mrsne r0, psp\n\t"
                     "mov r1, lr\n\t"
                     "ldr r2, =fault_stack + 512\n\t"
                     "mov sp, r2\n\t"
                     "b fault_report\n\t");
}

/* ---- vector table: 16 system entries + 16 IRQs, all unexpected ones go to Fault_Handler ---- */
typedef void (*vector_t)(void);

__attribute__((section(".vectors"), used)) const vector_t dws_vectors[32] = {
    (vector_t)__stack_top__, /* initial MSP */
    Reset_Handler,
    Fault_Handler, /* NMI */
    Fault_Handler, /* HardFault */
    Fault_Handler, /* MemManage */
    Fault_Handler, /* BusFault */
    Fault_Handler, /* UsageFault */
    Fault_Handler, /* SecureFault (Armv8-M) */
    0, 0, 0,
    Fault_Handler, /* SVCall */
    Fault_Handler, /* DebugMonitor */
    0,
    Fault_Handler, /* PendSV */
    Fault_Handler, /* SysTick */
    Fault_Handler, Fault_Handler, Fault_Handler, Fault_Handler, /* IRQs: none are enabled */
    Fault_Handler, Fault_Handler, Fault_Handler, Fault_Handler,
    Fault_Handler, Fault_Handler, Fault_Handler, Fault_Handler,
    Fault_Handler, Fault_Handler, Fault_Handler, Fault_Handler,
};
