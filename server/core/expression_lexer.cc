#include "core/expression_lexer.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace hpsched::core::expression_internal {
namespace {

bool Fail(std::string* error, std::string message) {
  *error = std::move(message);
  return false;
}

}  // namespace

std::string Quote(std::string_view s) {
  constexpr size_t kMaxShown = 40;
  if (s.size() > kMaxShown) return absl::StrCat("'", Sv(s.substr(0, kMaxShown)), "...'");
  return absl::StrCat("'", Sv(s), "'");
}

std::string Column(size_t pos) { return absl::StrCat("column ", pos + 1); }

bool Lexer::NextCharIs(char c) const {
  size_t next = pos_;
  while (next < text_.size() && IsSpace(text_[next])) ++next;
  return next < text_.size() && text_[next] == c;
}

bool Lexer::Next(Token* tok, std::string* error) {
  const size_t n = text_.size();
  size_t p = pos_;
  while (p < n && IsSpace(text_[p])) ++p;
  *tok = Token{Tok::kEnd, p, 0, 0.0};
  if (p >= n) {
    pos_ = p;
    return true;
  }
  const char c = text_[p];
  const char next = p + 1 < n ? text_[p + 1] : '\0';
  auto punct = [&](Tok kind, size_t len) {
    tok->kind = kind;
    tok->len = len;
    pos_ = p + len;
    return true;
  };
  if (IsDigit(c) || (c == '.' && IsDigit(next))) return LexNumber(p, tok, error);
  if (IsIdentStart(c)) {
    size_t q = p + 1;
    while (q < n && IsIdentChar(text_[q])) ++q;
    return punct(Tok::kIdent, q - p);
  }
  switch (c) {
    case '+':
      return punct(Tok::kPlus, 1);
    case '-':
      return punct(Tok::kMinus, 1);
    case '*':
      return next == '*' ? punct(Tok::kPow, 2) : punct(Tok::kStar, 1);
    case '^':
      return punct(Tok::kPow, 1);
    case '/':
      return punct(Tok::kSlash, 1);
    case '<':
      return next == '=' ? punct(Tok::kLe, 2) : punct(Tok::kLt, 1);
    case '>':
      return next == '=' ? punct(Tok::kGe, 2) : punct(Tok::kGt, 1);
    case '!':
      return next == '=' ? punct(Tok::kNe, 2) : punct(Tok::kBang, 1);
    case '=':
      if (next == '=') return punct(Tok::kEq, 2);
      return Fail(error,
                  absl::StrCat("unexpected character '=' at ", Column(p), " (did you mean '=='?)"));
    case '&':
      if (next == '&') return punct(Tok::kAndAnd, 2);
      return Fail(error,
                  absl::StrCat("unexpected character '&' at ", Column(p), " (did you mean '&&'?)"));
    case '|':
      if (next == '|') return punct(Tok::kOrOr, 2);
      return Fail(error,
                  absl::StrCat("unexpected character '|' at ", Column(p), " (did you mean '||'?)"));
    case '?':
      return punct(Tok::kQuestion, 1);
    case ':':
      return punct(Tok::kColon, 1);
    case '(':
      return punct(Tok::kLParen, 1);
    case ')':
      return punct(Tok::kRParen, 1);
    case ',':
      return punct(Tok::kComma, 1);
    default:
      break;
  }
  const auto byte = static_cast<unsigned char>(c);
  if (byte > 0x20 && byte < 0x7F) {
    return Fail(error, absl::StrCat("unexpected character '", absl::string_view(&c, 1), "' at ",
                                    Column(p)));
  }
  return Fail(
      error, absl::StrFormat("unexpected byte 0x%02X at %s (only printable ASCII is allowed)", byte,
                             Column(p)));
}

bool Lexer::LexNumber(size_t p, Token* tok, std::string* error) {
  const size_t n = text_.size();
  const size_t start = p;
  bool malformed = false;
  while (p < n && IsDigit(text_[p])) ++p;
  const size_t int_end = p;
  size_t frac_begin = p, frac_end = p;
  if (p < n && text_[p] == '.') {
    ++p;
    frac_begin = p;
    while (p < n && IsDigit(text_[p])) ++p;
    frac_end = p;
  }
  const size_t mantissa_end = p;
  if (p < n && (text_[p] == 'e' || text_[p] == 'E')) {
    size_t q = p + 1;
    if (q < n && (text_[q] == '+' || text_[q] == '-')) ++q;
    if (q < n && IsDigit(text_[q])) {
      p = q;
      while (p < n && IsDigit(text_[p])) ++p;
    } else {
      malformed = true;
      p = p + 1;
    }
  }
  if (p < n && (IsIdentChar(text_[p]) || text_[p] == '.')) malformed = true;
  if (malformed) {
    while (p < n && (IsIdentChar(text_[p]) || text_[p] == '.')) ++p;
    return Fail(error, absl::StrCat("malformed number ", Quote(text_.substr(start, p - start)),
                                    " at ", Column(start)));
  }
  const std::string_view lexeme = text_.substr(start, p - start);
  double value = 0.0;
  const auto [ptr, ec] = std::from_chars(lexeme.data(), lexeme.data() + lexeme.size(), value);
  if (ec == std::errc::result_out_of_range) {
    // Either overflow (an error) or underflow to zero (Python also gives
    // 0.0). Decide by the decimal order of magnitude of the literal.
    long long order = 0;
    bool found = false;
    for (size_t i = start; i < int_end && !found; ++i) {
      if (text_[i] != '0') {
        order = static_cast<long long>(int_end - i);
        found = true;
      }
    }
    for (size_t i = frac_begin; i < frac_end && !found; ++i) {
      if (text_[i] != '0') {
        order = -static_cast<long long>(i - frac_begin);
        found = true;
      }
    }
    long long exponent = 0;
    if (mantissa_end < p) {
      size_t q = mantissa_end + 1;
      bool negative = false;
      if (text_[q] == '+' || text_[q] == '-') negative = text_[q++] == '-';
      for (; q < p; ++q) {
        exponent = std::min<long long>(exponent * 10 + (text_[q] - '0'), 1000000000LL);
      }
      if (negative) exponent = -exponent;
    }
    if (found && order + exponent > 0) {
      return Fail(error, absl::StrCat("number ", Quote(lexeme), " at ", Column(start),
                                      " is out of range (not a finite double)"));
    }
    value = 0.0;
  } else if (ec != std::errc() || ptr != lexeme.data() + lexeme.size() || !std::isfinite(value)) {
    return Fail(error, absl::StrCat("malformed number ", Quote(lexeme), " at ", Column(start)));
  }
  *tok = Token{Tok::kNumber, start, p - start, value};
  pos_ = p;
  return true;
}
}  // namespace hpsched::core::expression_internal
