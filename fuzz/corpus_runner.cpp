// Runs a fuzz target over corpus files without libFuzzer, so every compiler (and ctest) replays
// the seed corpus as a regression test: corpus_runner FILE_OR_DIR...
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

int main(int argc, char** argv) {
    namespace fs = std::filesystem;
    std::size_t runs = 0;
    auto run_file = [&](const fs::path& p) {
        std::ifstream in(p, std::ios::binary);
        const std::vector<std::uint8_t> data((std::istreambuf_iterator<char>(in)), {});
        LLVMFuzzerTestOneInput(data.data(), data.size());
        ++runs;
    };
    for (int i = 1; i < argc; ++i) {
        const fs::path arg = argv[i];
        if (fs::is_directory(arg)) {
            for (const auto& entry : fs::recursive_directory_iterator(arg))
                if (entry.is_regular_file()) run_file(entry.path());
        } else {
            run_file(arg);
        }
    }
    std::printf("%zu inputs ran without a finding\n", runs);
    return runs > 0 ? 0 : 1;
}
