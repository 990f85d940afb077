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
#define ADP_Stopped_RunTimeErrorUnknown 0x20023

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
    /* host without the extension: plain SYS_EXIT only knows success (0) or failure (1) */
    semihost(SYS_EXIT, (void *)(code == 0 ? ADP_Stopped_ApplicationExit : ADP_Stopped_RunTimeErrorUnknown));
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
void *_sbrk(ptrdiff_t incr);
__attribute__((used)) void *_sbrk(ptrdiff_t incr) /* used: only libc calls it (matters with -flto) */
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

#if __ARM_ARCH == 7
/* Armv7-M MPU. On the MPS2 boards unmapped addresses read as zero and ignore writes, so a wild
 * pointer or a stack overflow would silently run on (the stack would grow down into the code).
 * With the default map disabled (PRIVDEFENA=0) only these regions are accessible and anything
 * else is a MemManage fault: code read-only, RAM and stack not executable. */
extern char __flash_region__[], __flash_region_size__[], __ram_region__[], __ram_region_size__[];
extern char __stackram_region__[], __stackram_region_size__[], __const_region__[], __const_region_size__[];
#define MPU_CTRL (*(volatile uint32_t *)0xE000ED94u)
#define MPU_RNR (*(volatile uint32_t *)0xE000ED98u)
#define MPU_RBAR (*(volatile uint32_t *)0xE000ED9Cu)
#define MPU_RASR (*(volatile uint32_t *)0xE000EDA0u)
#define RASR_XN (1u << 28)
#define RASR_AP_RW (3u << 24)
#define RASR_AP_RO (6u << 24)
#define RASR_NORMAL_WB (1u << 17 | 1u << 16) /* TEX=0 C=1 B=1: Normal memory, so unaligned ok */

static void mpu_region(uint32_t n, const char *base, const char *size, uint32_t attrs)
{
    /* The region's size rounded up to a power of 2 (base is aligned to it; see the board script). */
    uint32_t log2 = 32u - (uint32_t)__builtin_clz((uint32_t)size - 1u);
    MPU_RNR = n;
    MPU_RBAR = (uint32_t)base;
    MPU_RASR = attrs | RASR_NORMAL_WB | (log2 - 1u) << 1 | 1u;
}

static void mpu_init(void)
{
    mpu_region(0, __flash_region__, __flash_region_size__, RASR_AP_RO);
    /* Every Armv7-M board script gives the constants a region of their own (the PSRAM); one that
     * aliased CONST to FLASH would make the code XN here and fault on the first instruction. Rounded up
     * to a power of 2 it may cover RAM too: RAM's region has the higher number, which wins where they overlap. */
    mpu_region(1, __const_region__, __const_region_size__, RASR_AP_RO | RASR_XN);
    mpu_region(2, __stackram_region__, __stackram_region_size__, RASR_AP_RW | RASR_XN);
    mpu_region(3, __ram_region__, __ram_region_size__, RASR_AP_RW | RASR_XN);
    MPU_CTRL = 1u; /* ENABLE, PRIVDEFENA=0; the system region (SCB, MPU) stays accessible */
}
#endif

/* -nostartfiles drops crti.o, which normally defines these; newlib's __libc_init_array and
 * exit()'s __libc_fini_array still call them. */
void _init(void);
void _fini(void);
__attribute__((used)) void _init(void) {}
__attribute__((used)) void _fini(void) {}
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
    /* .data is loaded into the code region and copied out; .bss is zeroed (QEMU's RAM starts
     * zeroed, a real part's does not). */
    memcpy(__data_start__, __data_load__, (size_t)((char *)__data_end__ - (char *)__data_start__));
    memset(__bss_start__, 0, (size_t)((char *)__bss_end__ - (char *)__bss_start__));

    /* Report MemManage/BusFault/UsageFault as themselves, not escalated to HardFault, and
     * trap integer division by zero (otherwise silently 0 on Cortex-M). */
    SCB_SHCSR |= (1u << 16) | (1u << 17) | (1u << 18);
    SCB_CCR |= 1u << 4;
#if __ARM_ARCH == 7
    mpu_init();
#endif
#if __ARM_ARCH >= 8
    /* Armv8-M stack limit: an overflow becomes a UsageFault (STKOF) instead of corruption.
     * (The MPS2-TZ/MPS3 boards already fault on unmapped addresses; no MPU needed.) */
    __asm__ volatile("msr msplim, %0" : : "r"(__stack_bottom__));
#endif
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

/* CFSR bits worth a word for a user (MemManage 0-7, BusFault 8-15, UsageFault 16-31); the
 * first match is printed, so the stacking errors (the real cause) come first. */
static const struct { uint32_t bit; const char *what; } cfsr_reasons[] = {
    {1u << 4 | 1u << 12, "stack overflow (exception entry could not push the frame)"},
    {1u << 0, "instruction fetch from a forbidden address"},
    {1u << 1, "data access to a forbidden address (mmfar)"},
    {1u << 8, "instruction fetch from an unmapped or blocked address"},
    {1u << 9, "data access to an unmapped or blocked address (bfar)"},
    {1u << 10, "imprecise data bus error"},
    {1u << 16, "undefined instruction"},
    {1u << 17, "invalid state (e.g. a jump to an address with bit 0 clear)"},
    {1u << 18, "invalid exception return"},
    {1u << 19, "FPU/MVE instruction with the coprocessor disabled or absent"},
    {1u << 20, "stack overflow (stack limit register)"},
    {1u << 24, "unaligned access"},
    {1u << 25, "integer division by zero"},
};

/* Called with the exception frame (if it looks valid) and EXC_RETURN, on a private stack. */
__attribute__((noreturn, used)) static void fault_report(uint32_t *frame, uint32_t exc_return)
{
    uint32_t ipsr;
    size_t i;
    __asm__ volatile("mrs %0, ipsr" : "=r"(ipsr));
    ipsr &= 0x1FFu;
    fault_len = 0;
    put_str("\n*** FAULT: ");
    put_str(ipsr < sizeof exc_names / sizeof exc_names[0] ? exc_names[ipsr] : "unexpected IRQ");
    put_str(" (exception ");
    put_hex(ipsr);
    put_str(") pc=");
    /* Only read the stacked frame if it was written (no stacking error / stack-limit fault)
     * and lies inside the stack. */
    if (SCB_CFSR & (1u << 4 | 1u << 12 | 1u << 20)) {
        put_str("? (exception frame not stacked)");
    } else if (frame >= __stack_bottom__ && frame + 8 <= __stack_top__) {
        put_hex(frame[6]);
        put_str(" lr=");
        put_hex(frame[5]);
    } else {
        put_str("? (stack pointer outside the stack)");
    }
    for (i = 0; i < sizeof cfsr_reasons / sizeof cfsr_reasons[0]; i++) {
        if (SCB_CFSR & cfsr_reasons[i].bit) {
            put_str(": ");
            put_str(cfsr_reasons[i].what);
            break;
        }
    }
    put_str("\n    cfsr=");
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
/* A union keeps ISO C happy: entry 0 is a data address (initial MSP), the rest are code. */
typedef union {
    void (*handler)(void);
    const void *sp;
} vector_t;
#define F {.handler = Fault_Handler}
#define RESERVED {.handler = 0}

__attribute__((section(".vectors"), used)) const vector_t dws_vectors[32] = {
    {.sp = __stack_top__}, /* initial MSP */
    {.handler = Reset_Handler},
    F, /* NMI */
    F, /* HardFault */
    F, /* MemManage */
    F, /* BusFault */
    F, /* UsageFault */
    F, /* SecureFault (Armv8-M) */
    RESERVED, RESERVED, RESERVED,
    F, /* SVCall */
    F, /* DebugMonitor */
    RESERVED,
    F, /* PendSV */
    F, /* SysTick */
    F, F, F, F, F, F, F, F, F, F, F, F, F, F, F, F, /* IRQ 0-15: none are enabled */
};
