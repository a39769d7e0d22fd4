// The fuzzer's input read as a series of choices: each call takes the next byte(s); past the end,
// every choice is zero, so any input, even an empty one, plays out to the end.
#pragma once

#include <cstddef>
#include <cstdint>

namespace kdcom::fuzz {

class choices {
public:
    choices(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
    bool more() const { return at_ < size_; }
    std::uint8_t byte() { return at_ < size_ ? data_[at_++] : 0; }
    std::uint16_t u16() { return static_cast<std::uint16_t>(byte() | byte() << 8); }
    // A probability in [0, most], in 256 steps.
    double share(double most) { return most * byte() / 255.0; }

private:
    const std::uint8_t* data_;
    std::size_t size_;
    std::size_t at_ = 0;
};

}  // namespace kdcom::fuzz
