// The dashboard's static files (everything under server/web/ but this library's own sources),
// compiled into the binary at build time by cmake/EmbedAssets.cmake: nothing is read from disk or
// fetched at run time. The table is immutable and its bytes live for the whole program, so the
// pointers and views below never dangle and every function is thread-safe.
#ifndef HPSCHED_WEB_WEB_ASSETS_H_
#define HPSCHED_WEB_WEB_ASSETS_H_

#include <cstddef>
#include <string_view>

namespace hpsched::web {

struct Asset {
  // "/index.html", "/app.js", "/lib/uplot.js": the file's path under server/web/, with a leading /.
  std::string_view path;
  // By the file's extension: "text/html; charset=utf-8", "text/javascript; charset=utf-8", ...;
  // application/octet-stream for an extension the generator does not know.
  std::string_view content_type;
  // The file's bytes, exactly.
  std::string_view body;
};

// The asset at `path` (exact, case-sensitive match; "/" is not an alias here, the HTTP listener
// maps it to "/index.html"), or nullptr if there is none.
const Asset* FindAsset(std::string_view path);

// Every asset, in order of path: AssetAt(i) for i < AssetCount(), nullptr beyond.
size_t AssetCount();
const Asset* AssetAt(size_t i);

}  // namespace hpsched::web

#endif  // HPSCHED_WEB_WEB_ASSETS_H_
