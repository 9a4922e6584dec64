// apps/qlora/commands.hpp — the subcommands of the `qlora` program. Each takes
// the arguments after its name and returns the process exit code.
#pragma once

namespace qlora::app {

int cmd_quantize(int argc, char** argv);
int cmd_inspect(int argc, char** argv);

}  // namespace qlora::app
