// apps/qlora/commands.hpp — the subcommands of the `qlora` program. Each takes
// the arguments after its name and returns the process exit code.
#pragma once

namespace qlora::app {

int cmd_quantize(int argc, char** argv);
int cmd_inspect(int argc, char** argv);
/// `qlora dataset build --kg PATH... --out DIR [...]`: knowledge graph -> QA
/// pool -> rebalanced nested subsets, report and test-set check (Stage 1 data).
int cmd_dataset(int argc, char** argv);

}  // namespace qlora::app
