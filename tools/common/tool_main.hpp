// The part of every tool's main() after its options are declared: parse the command line, answer
// --help, run, and turn what the run throws into a message on stderr and the exit status it
// deserves.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <exception>

#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include "terminal_text.hpp"
#include "tool_error.hpp"

namespace kdcom::tools {

// Output into a pipe goes line by line, as on a terminal: whoever reads it (a test, `tee`, a
// log collector) sees each line when it is printed, and in order with what went to stderr.
inline void flush_lines_into_pipes() {
    struct stat st {};
    if (::fstat(STDOUT_FILENO, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)))
        std::setvbuf(stdout, nullptr, _IOLBF, BUFSIZ);
}

template <class Run>
int tool_main(const char* name, CLI::App& app, int argc, char** argv, Run run) {
    flush_lines_into_pipes();
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp&) {
        fmt::print("{}", app.help());
        return exit_ok;
    } catch (const CLI::ParseError& e) {
        fmt::print(stderr, "{}: {}\nRun with --help for usage.\n", name, e.what());
        return exit_usage;
    }
    try {
        return run();
    } catch (const tool_error& e) {
        // Messages name files and quote what was read from them: escaped.
        fmt::print(stderr, "{}: {}\n", name, printable(e.what()));
        return e.status;
    } catch (const std::exception& e) {
        fmt::print(stderr, "{}: {}\n", name, printable(e.what()));
        return exit_usage;
    }
}

}  // namespace kdcom::tools
