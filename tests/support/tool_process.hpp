// Runs a tool as a user would: its own process, its output in a file the test reads while it runs.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace kdcom::test {

// A tool running as its own process, with its standard output and error going to a file, and its
// standard input from `input` if one is named.
struct tool_process {
    pid_t pid = -1;
    std::string output_path;
    long peak_kib = -1;  // once wait_exit() returned: the most memory it held (its peak RSS)

    tool_process(const char* program, const std::vector<std::string>& args, const std::string& output,
                 const std::string& input = {})
        : output_path(output) {
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        if (!input.empty()) posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, input.c_str(), O_RDONLY, 0);
        posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, output.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
        std::vector<char*> argv{const_cast<char*>(program)};
        for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);
        if (::posix_spawn(&pid, program, &actions, nullptr, argv.data(), environ) != 0) pid = -1;
        posix_spawn_file_actions_destroy(&actions);
    }
    ~tool_process() {
        if (pid > 0) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
        }
    }
    std::string output() const {
        std::ifstream in(output_path);
        std::ostringstream s;
        s << in.rdbuf();
        return s.str();
    }
    bool wait_for_output(const std::string& text, std::chrono::milliseconds limit = std::chrono::seconds(10)) const {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        while (std::chrono::steady_clock::now() < deadline) {
            if (output().find(text) != std::string::npos) return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        return false;
    }
    int wait_exit() {
        int status = 0;
        rusage usage{};
        ::wait4(pid, &status, 0, &usage);
        peak_kib = usage.ru_maxrss;
        pid = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
};

// Runs a shell command to its end: its exit status and what it printed (stdout and stderr).
struct command_result {
    int status = -1;
    std::string out;
};

inline command_result run_command(const std::string& command) {
    command_result r;
    FILE* p = ::popen((command + " 2>&1").c_str(), "r");
    if (!p) return r;
    char buffer[4096];
    while (std::size_t n = std::fread(buffer, 1, sizeof buffer, p)) r.out.append(buffer, n);
    const int status = ::pclose(p);
    r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
}

}  // namespace kdcom::test
