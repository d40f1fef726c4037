// The lexer of the expression language: bytes of source text -> tokens.
//
// Only printable ASCII and the six whitespace characters are accepted; every error names a 1-based
// column. Number literals are parsed here (std::from_chars, so correctly rounded) and must be
// finite doubles. Implementation detail of Expression (namespace expression_internal).

#ifndef HPSCHED_CORE_EXPRESSION_LEXER_H_
#define HPSCHED_CORE_EXPRESSION_LEXER_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/strings/string_view.h"

namespace hpsched::core::expression_internal {

enum class Tok : uint8_t {
  kEnd,
  kNumber,
  kIdent,
  kPlus,
  kMinus,
  kStar,
  kSlash,
  kPow,
  kLt,
  kLe,
  kGt,
  kGe,
  kEq,
  kNe,
  kAndAnd,
  kOrOr,
  kBang,
  kQuestion,
  kColon,
  kLParen,
  kRParen,
  kComma,
};

// A token: its kind, its byte offset and length in the text, and a number literal's value.
struct Token {
  Tok kind = Tok::kEnd;
  size_t pos = 0;
  size_t len = 0;
  double number = 0.0;
};

inline bool IsDigit(char c) { return c >= '0' && c <= '9'; }
inline bool IsIdentStart(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
inline bool IsIdentChar(char c) { return IsIdentStart(c) || IsDigit(c); }
inline bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

// absl may be built with its own string_view type (e.g. Debian's package);
// convert explicitly so the code builds either way.
inline absl::string_view Sv(std::string_view s) { return absl::string_view(s.data(), s.size()); }

// Quotes a (pure ASCII, lexer-produced) lexeme for an error message, shortening very long ones.
std::string Quote(std::string_view s);

// "column N", N being the 1-based column of byte offset `pos`.
std::string Column(size_t pos);

class Lexer {
 public:
  explicit Lexer(std::string_view text) : text_(text) {}

  // Reads the next token into *tok (kind kEnd at the end of the text, repeatedly). On a lexical
  // error returns false and sets *error to the message (e.g. "malformed number '1e' at column 1").
  bool Next(Token* tok, std::string* error);

  // Whether the first non-space character after the last token read is `c` (a peek that reports
  // no error about what follows).
  bool NextCharIs(char c) const;

 private:
  // Lexes a number literal starting at p: digits [. digits] [(e|E) [+-]
  // digits], with at least one mantissa digit. Rejects literals that run into
  // letters, digits, '_' or '.', and literals that are not finite doubles.
  bool LexNumber(size_t p, Token* tok, std::string* error);

  std::string_view text_;
  size_t pos_ = 0;  // Offset just past the last token read.
};

}  // namespace hpsched::core::expression_internal

#endif  // HPSCHED_CORE_EXPRESSION_LEXER_H_
