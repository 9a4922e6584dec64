// `qlora serve MODEL.gguf [--host 127.0.0.1] [--port 11434] [--name NAME]`
//
// An HTTP server with Ollama's endpoints (/api/chat, /api/generate, /api/tags)
// and OpenAI's /v1/chat/completions (and /v1/models), streaming or not, over
// one model (serve/chat_server.hpp). Loopback by default: binding another
// address exposes the model to the network, so it has to be asked for.
// Clients that speak either API — the judge of `qlora judge`, Open WebUI,
// the openai Python package — work unchanged.
#include <cxxopts.hpp>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>

#include "cli_args.hpp"
#include "commands.hpp"
#include "model_session.hpp"
#include "qlora/net/http_server.hpp"
#include "qlora/serve/chat_server.hpp"

namespace qlora::app {

namespace {
volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }
}  // namespace

int cmd_serve(int argc, char** argv) {
  const std::string cmd = "qlora serve";
  cxxopts::Options o(cmd, "Serve a GGUF model over Ollama- and OpenAI-compatible HTTP endpoints.");
  o.positional_help("MODEL.gguf");
  o.add_options()("host", "address to bind (loopback by default)",
                  cxxopts::value<std::string>()->default_value("127.0.0.1"))(
      "port", "TCP port (0: any free port, printed)", cxxopts::value<int>()->default_value("11434"))(
      "name", "model name clients use (default: the file name without .gguf)", cxxopts::value<std::string>())(
      "template", "chat template name instead of the GGUF's (" + text::ChatTemplate::supported_names() + ")",
      cxxopts::value<std::string>()->default_value(""))(
      "c,ctx", "KV cache positions", cxxopts::value<std::uint32_t>()->default_value("4096"))(
      "max-connections", "clients served at once (others get 503)", cxxopts::value<std::size_t>()->default_value("16"))(
      "t,threads", "threads; 0 = QLORA_THREADS or all cores", cxxopts::value<int>()->default_value("0"))(
      "h,help", "show this help")("model", "GGUF model", cxxopts::value<std::string>());
  o.parse_positional({"model"});
  ModelSession::add_lora_option(o);
  cxxopts::ParseResult args;
  if (auto exit_code = parse_args(o, argc, argv, cmd, args)) return *exit_code;
  if (!args.count("model")) {
    std::fprintf(stderr, "%s: need MODEL.gguf\n%s\n", cmd.c_str(), o.help().c_str());
    return 2;
  }
  const int port = args["port"].as<int>();
  if (port < 0 || port > 65535) {
    std::fprintf(stderr, "%s: --port %d is out of range (0-65535)\n", cmd.c_str(), port);
    return 2;
  }
  const std::string path = args["model"].as<std::string>();
  auto s = ModelSession::open(cmd, path, args["threads"].as<int>());
  if (!s || !s->open_decoder(cmd, args["ctx"].as<std::uint32_t>())) return 1;
  if (!s->apply_lora_option(args, cmd)) return 1;
  auto tmpl = s->chat_template(cmd, args["template"].as<std::string>());
  if (!tmpl) return 1;
  serve::ModelInfo info;
  info.name = args.count("name") ? args["name"].as<std::string>() : std::filesystem::path(path).stem().string();
  std::error_code ec;
  info.size = std::filesystem::file_size(path, ec);
  info.family = s->dec->config().arch;
  serve::ChatServer chat(*s->dec, *s->tok, *tmpl, info);

  net::ServerOptions so;
  so.host = args["host"].as<std::string>();
  so.port = std::uint16_t(port);
  so.max_connections = args["max-connections"].as<std::size_t>();
  net::HttpServer server;
  if (Status st = server.start(so, [&](const net::HttpRequest& r, net::ResponseWriter& w) { chat.handle(r, w); });
      !st.is_ok()) {
    std::fprintf(stderr, "%s: %s\n", cmd.c_str(), st.message().c_str());
    return 1;
  }
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  std::printf("serving '%s' on http://%s:%u (Ollama /api/chat /api/generate /api/tags, OpenAI /v1/chat/completions)\n",
              info.name.c_str(), so.host.c_str(), unsigned(server.port()));
  std::fflush(stdout);
  while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::printf("stopping\n");
  server.stop();
  return 0;
}

}  // namespace qlora::app
