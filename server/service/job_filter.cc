#include "service/job_filter.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace hpsched::service {
namespace {

constexpr absl::string_view kSupported =
    "supported: labels.KEY = \"VALUE\", id = \"ID\", id:\"PREFIX*\", joined by AND";

struct Token {
  enum Kind { kWord, kString, kEquals, kColon, kEnd } kind;
  std::string text;
  size_t position;  // Counted from 1.
};

bool IsWordChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.' ||
         c == '*';
}

absl::Status Error(size_t position, absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("filter: position ", position, ": ", what, " (", kSupported, ")"));
}

absl::StatusOr<std::vector<Token>> Tokenize(absl::string_view text) {
  std::vector<Token> tokens;
  size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (absl::ascii_isspace(static_cast<unsigned char>(c))) {
      ++i;
    } else if (c == '=' || c == ':') {
      tokens.push_back({c == '=' ? Token::kEquals : Token::kColon, std::string(1, c), i + 1});
      ++i;
    } else if (c == '"') {
      const size_t start = i;
      std::string value;
      ++i;
      bool closed = false;
      while (i < text.size()) {
        if (text[i] == '\\' && i + 1 < text.size() && (text[i + 1] == '"' || text[i + 1] == '\\')) {
          value += text[i + 1];
          i += 2;
        } else if (text[i] == '"') {
          closed = true;
          ++i;
          break;
        } else {
          value += text[i++];
        }
      }
      if (!closed) return Error(start + 1, "a string that is never closed");
      tokens.push_back({Token::kString, std::move(value), start + 1});
    } else if (IsWordChar(c)) {
      const size_t start = i;
      while (i < text.size() && IsWordChar(text[i])) ++i;
      tokens.push_back({Token::kWord, std::string(text.substr(start, i - start)), start + 1});
    } else {
      return Error(i + 1, absl::StrCat("'", std::string(1, c), "' is not supported"));
    }
  }
  tokens.push_back({Token::kEnd, "", text.size() + 1});
  return tokens;
}

}  // namespace

absl::StatusOr<JobFilter> JobFilter::Parse(absl::string_view text) {
  JobFilter filter;
  if (text.size() > kMaxFilterLength) {
    return absl::InvalidArgumentError(
        absl::StrCat("filter: at most ", kMaxFilterLength, " characters, got ", text.size()));
  }
  auto tokens_or = Tokenize(text);
  if (!tokens_or.ok()) return tokens_or.status();
  const std::vector<Token>& tokens = *tokens_or;
  if (tokens.size() == 1) return filter;  // Only kEnd: every job.
  size_t t = 0;
  for (;;) {
    const Token& field = tokens[t];
    if (field.kind != Token::kWord) {
      return Error(field.position, field.kind == Token::kEnd ? "a term is missing at the end"
                                                             : "expected a field (labels.KEY, id)");
    }
    if (field.text == "OR" || field.text == "NOT" || field.text == "AND") {
      return Error(field.position, absl::StrCat(field.text, " where a term must start"));
    }
    const bool is_label = absl::StartsWith(field.text, "labels.");
    if (!is_label && field.text != "id") {
      return Error(field.position, absl::StrCat("the field \"", field.text, "\" is not supported"));
    }
    const std::string key = is_label ? field.text.substr(7) : "";
    if (is_label && (key.empty() || absl::StrContains(key, '*') || absl::StrContains(key, '.'))) {
      return Error(field.position + 7, "labels. must be followed by one label key");
    }
    const Token& op = tokens[t + 1];
    if (op.kind != Token::kEquals && op.kind != Token::kColon) {
      return Error(op.position, absl::StrCat("expected = after ", field.text));
    }
    if (is_label && op.kind == Token::kColon) {
      return Error(op.position, "labels.KEY takes = (the has operator : is not supported)");
    }
    const Token& value = tokens[t + 2];
    if (value.kind != Token::kString && value.kind != Token::kWord) {
      return Error(value.position, absl::StrCat("expected a value after ", op.text));
    }
    const size_t star = value.text.find('*');
    const bool prefix = !is_label && star != std::string::npos && star + 1 == value.text.size();
    if (star != std::string::npos && !prefix) {
      return Error(value.position, is_label ? "a label value cannot hold a wildcard *"
                                            : "* is only supported at the end of an id");
    }
    if (!is_label && op.kind == Token::kColon && !prefix) {
      return Error(value.position, "id: takes a prefix ending in *, e.g. id:\"exp-*\"");
    }
    if (is_label) {
      filter.labels_.emplace_back(key, value.text);
    } else {
      filter.ids_.push_back({prefix ? value.text.substr(0, star) : value.text, prefix});
    }
    t += 3;
    if (tokens[t].kind == Token::kEnd) return filter;
    if (tokens[t].kind != Token::kWord || tokens[t].text != "AND") {
      return Error(tokens[t].position,
                   tokens[t].kind == Token::kWord && tokens[t].text == "OR"
                       ? "OR is not supported"
                       : absl::StrCat("expected AND, got \"", tokens[t].text, "\""));
    }
    ++t;
  }
}

bool JobFilter::Matches(absl::string_view id, const core::Labels& labels) const {
  for (const auto& [key, value] : labels_) {
    auto it = labels.find(key);
    if (it == labels.end() || it->second != value) return false;
  }
  for (const IdTerm& term : ids_) {
    if (term.prefix ? !absl::StartsWith(id, term.text) : id != term.text) return false;
  }
  return true;
}

}  // namespace hpsched::service
