// Stock Linux: CR3 = the mm's pgd | kern_pcid; the kernel half is shared by all.
#include "root/registry.h"

namespace percpu {
namespace {

class SharedRoots final : public IRootScheme, public IRootInspector {  // no roots to inspect
 public:
  explicit SharedRoots(const RootEnv& env) : m_pti(env.pti) {}
  std::string name() const override { return "shared"; }
  const IRootInspector& inspector() const override { return *this; }
  RootSelection select_root(CpuId, Asid, const MmView& mm, bool) override {
    RootSelection sel;
    sel.kernel_root = mm.pgd;
    sel.user_root = m_pti ? mm.user_pgd : mm.pgd;
    return sel;
  }

 private:
  bool m_pti;
};

RegisterRootScheme reg("shared", "stock Linux: one pgd per mm, kernel half shared",
                       [](const RootEnv& env) { return std::make_unique<SharedRoots>(env); });

}  // namespace
}  // namespace percpu
