// A console reporter that also prints, after the usual table, each benchmark's throughput as a
// ratio to a baseline measured in the same run (for example decoding against memcpy of the same
// bytes), so that figures compare across machines.
#pragma once

#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <benchmark/benchmark.h>

namespace kdcom::bench {

class ratio_reporter : public benchmark::ConsoleReporter {
public:
    // Pairs of (benchmark name, baseline benchmark name), as Google Benchmark prints them.
    explicit ratio_reporter(std::vector<std::pair<std::string, std::string>> pairs)
        : pairs_(std::move(pairs)) {}

    // With --benchmark_repetitions the median is used; otherwise the single run.
    void ReportRuns(const std::vector<Run>& runs) override {
        for (const Run& run : runs) {
            if (run.error_occurred) continue;
            const bool median = run.run_type == Run::RT_Aggregate && run.aggregate_name == "median";
            if (run.run_type == Run::RT_Aggregate && !median) continue;
            auto it = run.counters.find("bytes_per_second");
            if (it == run.counters.end()) continue;
            const std::string name = run.run_name.str();
            if (median || !has_median_.count(name)) bytes_per_second_[name] = it->second.value;
            if (median) has_median_.insert(name);
        }
        ConsoleReporter::ReportRuns(runs);
    }

    void Finalize() override {
        ConsoleReporter::Finalize();
        std::printf("\n%-48s %-36s %12s %8s\n", "benchmark", "baseline", "MB/s", "ratio");
        for (const auto& [name, baseline] : pairs_) {
            const auto a = bytes_per_second_.find(name), b = bytes_per_second_.find(baseline);
            if (a == bytes_per_second_.end() || b == bytes_per_second_.end()) continue;
            std::printf("%-48s %-36s %12.1f %8.2f\n", name.c_str(), baseline.c_str(),
                        a->second / 1e6, a->second / b->second);
        }
    }

private:
    std::vector<std::pair<std::string, std::string>> pairs_;
    std::map<std::string, double> bytes_per_second_;
    std::set<std::string> has_median_;
};

}  // namespace kdcom::bench
