#include "logging.h"

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "spdlog/pattern_formatter.h"
#include "spdlog/spdlog.h"

namespace hpsched::server {
namespace {

// %* in a pattern: the log message as the contents of a JSON string.
class JsonEscapedMessage final : public spdlog::custom_flag_formatter {
 public:
  static void Append(std::string_view s, spdlog::memory_buf_t& dest) {
    dest.append(s.data(), s.data() + s.size());
  }

  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    static constexpr char kHex[] = "0123456789abcdef";
    for (char c : std::string_view(msg.payload.data(), msg.payload.size())) {
      switch (c) {
        case '"':
          Append("\\\"", dest);
          break;
        case '\\':
          Append("\\\\", dest);
          break;
        case '\n':
          Append("\\n", dest);
          break;
        case '\r':
          Append("\\r", dest);
          break;
        case '\t':
          Append("\\t", dest);
          break;
        default:
          if (static_cast<unsigned char>(c) < 0x20) {
            const char escaped[] = {'\\', 'u', '0', '0', kHex[(c >> 4) & 0xf], kHex[c & 0xf]};
            dest.append(escaped, escaped + sizeof(escaped));
          } else {
            dest.push_back(c);
          }
      }
    }
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonEscapedMessage>();
  }
};

}  // namespace

absl::Status ConfigureLogging(absl::string_view level, absl::string_view format) {
  const auto parsed = spdlog::level::from_str(std::string(level));
  if (parsed == spdlog::level::off && level != "off") {
    return absl::InvalidArgumentError(absl::StrCat(
        "--log_level: must be one of trace, debug, info, warn, error, critical, off, got \"", level,
        "\""));
  }
  spdlog::set_level(parsed);
  if (format == "json") {
    auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
    formatter->add_flag<JsonEscapedMessage>('*').set_pattern(
        R"({"time":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","thread":%t,"message":"%*"})");
    spdlog::set_formatter(std::move(formatter));
  } else if (format != "text") {
    return absl::InvalidArgumentError(
        absl::StrCat("--log_format: must be \"text\" or \"json\", got \"", format, "\""));
  }
  return absl::OkStatus();
}

}  // namespace hpsched::server
