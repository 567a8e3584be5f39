// Helpers for tests that drive the real qv binary as a separate process.
#ifndef QV_TESTS_QV_PROCESS_H_
#define QV_TESTS_QV_PROCESS_H_

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace qv::testing {

inline std::string Slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Outcome {
  int code = -1;
  std::string out, err;
};

// Runs `qv ARGS` in `dir` with no standard input; captures exit code and output.
inline Outcome RunQv(const std::string& qv, const std::filesystem::path& dir,
                     const std::string& args) {
  std::string cmd =
      "cd '" + dir.string() + "' && '" + qv + "' " + args + " >stdout.txt 2>stderr.txt </dev/null";
  int rc = std::system(cmd.c_str());
  Outcome o;
  o.code = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  o.out = Slurp(dir / "stdout.txt");
  o.err = Slurp(dir / "stderr.txt");
  return o;
}

// Every regular file under `a` exists under `b` with the same bytes, and
// there is at least one.
inline void ExpectSameTree(const std::filesystem::path& a, const std::filesystem::path& b) {
  size_t files = 0;
  for (auto& e : std::filesystem::recursive_directory_iterator(a)) {
    if (!e.is_regular_file()) continue;
    std::filesystem::path rel = std::filesystem::relative(e.path(), a);
    ASSERT_TRUE(std::filesystem::exists(b / rel)) << rel;
    EXPECT_EQ(Slurp(e.path()), Slurp(b / rel)) << rel;
    ++files;
  }
  EXPECT_GT(files, 0u);
}

}  // namespace qv::testing

#endif  // QV_TESTS_QV_PROCESS_H_
