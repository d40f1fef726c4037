#include "core/expression.h"

#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "core/expression_ast.h"
#include "core/expression_codegen.h"
#include "core/expression_lexer.h"
#include "core/expression_range.h"

namespace hpsched::core {
namespace {

using expression_internal::IsConstantName;
using expression_internal::IsFunctionName;
using expression_internal::IsIdentChar;
using expression_internal::IsIdentStart;
using expression_internal::Sv;

absl::Status CheckVariable(std::string_view variable) {
  bool valid = !variable.empty() && variable.size() <= 64 && IsIdentStart(variable[0]);
  for (char c : variable) valid = valid && IsIdentChar(c);
  if (!valid) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid variable name '", absl::CHexEscape(Sv(variable.substr(0, 64))),
                     "' (must match [A-Za-z_][A-Za-z0-9_]*, at most 64 characters)"));
  }
  if (IsFunctionName(variable) || IsConstantName(variable)) {
    return absl::InvalidArgumentError(
        absl::StrCat("variable name '", Sv(variable), "' is reserved"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Expression> Expression::Compile(std::string_view text, std::string_view variable) {
  if (absl::Status s = CheckVariable(variable); !s.ok()) return s;
  if (text.size() > kMaxLength) {
    return absl::InvalidArgumentError(
        absl::StrCat("longer than ", kMaxLength, " characters (got ", text.size(), ")"));
  }
  // The code generator runs in step with the parser, so an expression both too complex and
  // malformed gets the error that comes first in the text.
  expression_internal::CodeGen codegen;
  absl::StatusOr<expression_internal::Ast> ast =
      expression_internal::Parse(text, variable, &codegen);
  if (!ast.ok()) return ast.status();
  expression_internal::Program program = std::move(codegen).Finish();
  Expression e;
  e.text_ = std::string(text);
  e.variable_ = std::string(variable);
  e.code_ = std::move(program.code);
  e.result_ = program.result;
  e.slots_ = program.slots;
  e.ast_ = std::make_shared<const expression_internal::Ast>(*std::move(ast));
  return e;
}

absl::StatusOr<Interval> Expression::Range(const Domain& domain) const {
  if (domain.range.empty()) return Interval::Empty();
  if (!expression_internal::Finite(domain.range)) {
    return absl::InvalidArgumentError(
        absl::StrCat("the variable's range ", domain.range.ToString(), " is not finite"));
  }
  return expression_internal::AnalyzeRange(*ast_, text_, domain);
}

}  // namespace hpsched::core
