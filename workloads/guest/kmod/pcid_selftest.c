// SPDX-License-Identifier: GPL-2.0
/*
 * pcid_selftest: does this CPU (or simulator) honour PCID-tagged TLB
 * entries, CR3 bit 63, INVLPG and the four INVPCID types?
 *
 * A guest boots fine on a CPU whose INVPCID is a no-op or whose CR3 write
 * always flushes, so booting proves nothing about flush semantics. This
 * module asks the TLB directly. It maps one test virtual page (a vmap()
 * address, whose page tables every pgd shares) to frame A, reads it under
 * PCID X (a CR3 write of the current pgd with PCID X), then points the PTE
 * at frame B WITHOUT a flush, performs one operation and reads the page
 * again under PCID X: A means the stale TLB entry survived the operation,
 * B that it was flushed. Each case states what the SDM (vol. 3, 4.10.4)
 * requires. PCIDs X and Y (0x7e0, 0x7e1) are outside what Linux uses (1..6
 * for kernel ASIDs, the same with bit 11 for PTI's user half).
 *
 * Every case runs with interrupts off on one CPU and starts from a clean
 * TLB: CR4.PGE is toggled, which flushes every PCID and global entry
 * without relying on INVPCID (the thing under test). A case expecting A
 * is tried up to three times (a real TLB may evict an entry on its own; an
 * operation that flushes gives B every time). Afterwards the PTE, CR3 and
 * CR4 are restored and the TLB flushed.
 *
 * The two kinds of failure differ: got=A where B is expected is a stale
 * translation, a correctness bug of the CPU model; got=B where A is expected
 * means entries are not kept per PCID (the SDM lets a CPU drop entries at
 * any time, so this is a lost optimisation, not a correctness bug; it is
 * what an untagged TLB, e.g. a model that flushes on every CR3 write, gives).
 *
 * Output (one line per case, then a summary; /init prints them):
 *   percpu-selftest: <case> expected=<A|B> got=<A|B|?> ok|FAIL
 *   percpu-selftest: <n> passed, <m> failed
 * or "percpu-selftest: skipped (no pcid)" without PCID (or CR4.PCIDE off);
 * without INVPCID its cases are skipped with one line saying so.
 */
#include <linux/gfp.h>
#include <linux/init.h>
#include <linux/irqflags.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/printk.h>
#include <linux/vmalloc.h>
#include <asm/cpufeature.h>
#include <asm/invpcid.h>
#include <asm/pgtable.h>
#include <asm/processor-flags.h>
#include <asm/special_insns.h>
#include <asm/tlbflush.h>

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("percpu guest: ring-0 PCID/INVPCID/INVLPG TLB self-test");

#define PCID_X 0x7e0UL
#define PCID_Y 0x7e1UL
#define MARK_A 0xa5a5a5a5aaaaaaaaULL
#define MARK_B 0x5b5b5b5bbbbbbbbbULL

enum op {
	OP_CR3_NOFLUSH,      /* to Y, back to X with bit 63 set */
	OP_CR3_FLUSH,        /* to Y, back to X with bit 63 clear */
	OP_INVLPG_ON_Y,      /* INVLPG of the address while on Y */
	OP_INVLPG_ON_X,      /* INVLPG of the address while on X */
	OP_INVPCID0_X,       /* type 0, PCID X, the address (issued on Y) */
	OP_INVPCID0_Y,       /* type 0, PCID Y, the address (issued on X) */
	OP_INVPCID1_X,       /* type 1, PCID X (issued on Y) */
	OP_INVPCID1_Y,       /* type 1, PCID Y (issued on X) */
	OP_INVPCID2,         /* type 2: all PCIDs, globals included */
	OP_INVPCID3,         /* type 3: all PCIDs, globals kept */
};

struct tcase {
	const char *name;
	enum op op;
	bool global;   /* the test PTE has _PAGE_GLOBAL */
	bool invpcid;  /* needs INVPCID */
	char expected; /* 'A' survived, 'B' flushed */
};

static const struct tcase cases[] = {
	{ "cr3_switch_back_noflush", OP_CR3_NOFLUSH, false, false, 'A' },
	{ "cr3_switch_back_flush", OP_CR3_FLUSH, false, false, 'B' },
	{ "invlpg_on_other_pcid", OP_INVLPG_ON_Y, false, false, 'A' },
	{ "invlpg_on_same_pcid", OP_INVLPG_ON_X, false, false, 'B' },
	{ "invpcid0_addr_pcid_x", OP_INVPCID0_X, false, true, 'B' },
	{ "invpcid0_addr_pcid_y", OP_INVPCID0_Y, false, true, 'A' },
	{ "invpcid1_context_x", OP_INVPCID1_X, false, true, 'B' },
	{ "invpcid1_context_y", OP_INVPCID1_Y, false, true, 'A' },
	{ "invpcid2_all_incl_global", OP_INVPCID2, false, true, 'B' },
	{ "invpcid3_all_non_global", OP_INVPCID3, false, true, 'B' },
	{ "global_survives_cr3_flush", OP_CR3_FLUSH, true, false, 'A' },
	{ "global_survives_invpcid0", OP_INVPCID0_X, true, true, 'A' },
	{ "global_survives_invpcid1", OP_INVPCID1_X, true, true, 'A' },
	{ "global_survives_invpcid3", OP_INVPCID3, true, true, 'A' },
	{ "global_flushed_by_invpcid2", OP_INVPCID2, true, true, 'B' },
	{ "global_flushed_by_invlpg", OP_INVLPG_ON_Y, true, false, 'B' },
};

static unsigned long orig_cr3;    /* CR3 (pgd | Linux's PCID) when the case started */
static unsigned long pgd_pa;      /* its pgd */
static pte_t *test_ptep;
static unsigned long test_va;
static unsigned long pfn_a, pfn_b;

static inline void st_load_cr3(unsigned long pcid, bool noflush)
{
	native_write_cr3(pgd_pa | pcid | (noflush ? CR3_NOFLUSH : 0));
}

static inline void invlpg(unsigned long addr)
{
	asm volatile("invlpg (%0)" ::"r"(addr) : "memory");
}

/* Every TLB entry of every PCID, globals included, without INVPCID. */
static void flush_everything(void)
{
	/* cr4_update_irqsoff keeps Linux's CR4 shadow in step (interrupts are off). */
	if (__read_cr4() & X86_CR4_PGE) {
		cr4_update_irqsoff(0, X86_CR4_PGE);
		cr4_update_irqsoff(X86_CR4_PGE, 0);
	} else {
		cr4_update_irqsoff(X86_CR4_PGE, 0);
		cr4_update_irqsoff(0, X86_CR4_PGE);
	}
}

static void set_test_pte(unsigned long pfn, bool global)
{
	pteval_t flags = _PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED | _PAGE_DIRTY;

	if (__supported_pte_mask & _PAGE_NX)
		flags |= _PAGE_NX;
	if (global)
		flags |= _PAGE_GLOBAL;
	/* __pte, not pfn_pte: no mask may drop _PAGE_GLOBAL behind our back. */
	WRITE_ONCE(*test_ptep, __pte(((pteval_t)pfn << PAGE_SHIFT) | flags));
}

static char read_test_page(void)
{
	u64 v = READ_ONCE(*(volatile u64 *)test_va);

	return v == MARK_A ? 'A' : v == MARK_B ? 'B' : '?';
}

static char run_once(const struct tcase *c)
{
	unsigned long flags;
	char got;

	local_irq_save(flags);
	orig_cr3 = __native_read_cr3();
	pgd_pa = orig_cr3 & CR3_ADDR_MASK;
	set_test_pte(pfn_a, c->global);
	flush_everything();
	st_load_cr3(PCID_X, false);
	(void)read_test_page();            /* the TLB entry: VA -> A, PCID X */
	set_test_pte(pfn_b, c->global);    /* no flush: the entry is now stale */

	switch (c->op) {
	case OP_CR3_NOFLUSH:
		st_load_cr3(PCID_Y, false);
		st_load_cr3(PCID_X, true);
		break;
	case OP_CR3_FLUSH:
		st_load_cr3(PCID_Y, false);
		st_load_cr3(PCID_X, false);
		break;
	case OP_INVLPG_ON_Y:
		st_load_cr3(PCID_Y, false);
		invlpg(test_va);
		st_load_cr3(PCID_X, true);
		break;
	case OP_INVLPG_ON_X:
		invlpg(test_va);
		break;
	case OP_INVPCID0_X:
		st_load_cr3(PCID_Y, false);
		invpcid_flush_one(PCID_X, test_va);
		st_load_cr3(PCID_X, true);
		break;
	case OP_INVPCID0_Y:
		invpcid_flush_one(PCID_Y, test_va);
		break;
	case OP_INVPCID1_X:
		st_load_cr3(PCID_Y, false);
		invpcid_flush_single_context(PCID_X);
		st_load_cr3(PCID_X, true);
		break;
	case OP_INVPCID1_Y:
		invpcid_flush_single_context(PCID_Y);
		break;
	case OP_INVPCID2:
		st_load_cr3(PCID_Y, false);
		invpcid_flush_all();
		st_load_cr3(PCID_X, true);
		break;
	case OP_INVPCID3:
		st_load_cr3(PCID_Y, false);
		invpcid_flush_all_nonglobals();
		st_load_cr3(PCID_X, true);
		break;
	}
	got = read_test_page();

	set_test_pte(pfn_a, false);
	flush_everything();
	native_write_cr3(orig_cr3);         /* Linux's own PCID, flushed */
	local_irq_restore(flags);
	return got;
}

static int __init pcid_selftest_init(void)
{
	bool has_invpcid = boot_cpu_has(X86_FEATURE_INVPCID);
	bool has_pge = __read_cr4() & X86_CR4_PGE;
	unsigned long flags;
	struct page *dummy, *a, *b;
	pte_t orig_pte;
	unsigned int level;
	int passed = 0, failed = 0;
	size_t i;

	if (!boot_cpu_has(X86_FEATURE_PCID) || !(__read_cr4() & X86_CR4_PCIDE)) {
		pr_info("percpu-selftest: skipped (no pcid)\n");
		return 0;
	}
	dummy = alloc_page(GFP_KERNEL);
	a = alloc_page(GFP_KERNEL);
	b = alloc_page(GFP_KERNEL);
	if (!dummy || !a || !b)
		goto nomem;
	test_va = (unsigned long)vmap(&dummy, 1, VM_MAP, PAGE_KERNEL);
	if (!test_va)
		goto nomem;
	test_ptep = lookup_address(test_va, &level);
	if (!test_ptep || level != PG_LEVEL_4K) {
		pr_info("percpu-selftest: FAIL: no 4 KiB PTE for the test page\n");
		vunmap((void *)test_va);
		goto out_free;
	}
	orig_pte = *test_ptep;
	*(u64 *)page_address(a) = MARK_A;
	*(u64 *)page_address(b) = MARK_B;
	pfn_a = page_to_pfn(a);
	pfn_b = page_to_pfn(b);
	if (!has_invpcid)
		pr_info("percpu-selftest: invpcid cases skipped (no invpcid)\n");
	if (!has_pge)
		pr_info("percpu-selftest: global cases skipped (no pge)\n");

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		const struct tcase *c = &cases[i];
		int tries = c->expected == 'A' ? 3 : 1;
		char got = '?';

		if ((c->invpcid && !has_invpcid) || (c->global && !has_pge))
			continue;
		while (tries--) {
			got = run_once(c);
			if (got == c->expected)
				break;
		}
		if (got == c->expected)
			passed++;
		else
			failed++;
		pr_info("percpu-selftest: %s expected=%c got=%c %s\n", c->name, c->expected, got,
			got == c->expected ? "ok" : "FAIL");
	}

	local_irq_save(flags);
	WRITE_ONCE(*test_ptep, orig_pte);
	__flush_tlb_all();
	local_irq_restore(flags);
	vunmap((void *)test_va);
	pr_info("percpu-selftest: %d passed, %d failed\n", passed, failed);
	goto out_free;
nomem:
	pr_info("percpu-selftest: FAIL: out of memory\n");
out_free:
	if (dummy)
		__free_page(dummy);
	if (a)
		__free_page(a);
	if (b)
		__free_page(b);
	return 0;
}
module_init(pcid_selftest_init);
