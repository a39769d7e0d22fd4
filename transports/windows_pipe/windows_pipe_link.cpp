// Windows named pipes over Asio's I/O completion port (asio::windows::stream_handle).
#include "kdcom/net/windows_pipe_link.hpp"

#include <optional>
#include <vector>

#include <asio/post.hpp>
#include <asio/windows/overlapped_ptr.hpp>
#include <asio/windows/stream_handle.hpp>

#include <windows.h>  // after Asio, which includes winsock2.h first

#include "kdcom/net/asio_byte_stream.hpp"
#include "kdcom/net/socket_link.hpp"

namespace kdcom::net {
namespace {

using handle_stream = asio::windows::stream_handle;

std::error_code last_error() { return {static_cast<int>(::GetLastError()), std::system_category()}; }

std::wstring widen(const std::string& s) {
    const int n = ::MultiByteToWideChar(CP_UTF8, 0, s.data(), static_cast<int>(s.size()), nullptr, 0);
    std::wstring w(static_cast<std::size_t>(n), L'\0');
    ::MultiByteToWideChar(CP_UTF8, 0, s.data(), static_cast<int>(s.size()), w.data(), n);
    return w;
}

// A security descriptor whose DACL lets the current user (and nobody else) open the pipe.
class owner_only_security {
public:
    std::error_code init() {
        HANDLE token = nullptr;
        if (!::OpenProcessToken(::GetCurrentProcess(), TOKEN_QUERY, &token)) return last_error();
        DWORD size = 0;
        ::GetTokenInformation(token, TokenUser, nullptr, 0, &size);
        user_.resize(size);
        const BOOL got = ::GetTokenInformation(token, TokenUser, user_.data(), size, &size);
        ::CloseHandle(token);
        if (!got) return last_error();
        PSID sid = reinterpret_cast<TOKEN_USER*>(user_.data())->User.Sid;
        const DWORD acl_size = sizeof(ACL) + sizeof(ACCESS_ALLOWED_ACE) - sizeof(DWORD) + ::GetLengthSid(sid);
        acl_.resize(acl_size);
        auto* acl = reinterpret_cast<PACL>(acl_.data());
        if (!::InitializeAcl(acl, acl_size, ACL_REVISION) || !::AddAccessAllowedAce(acl, ACL_REVISION, FILE_ALL_ACCESS, sid) ||
            !::InitializeSecurityDescriptor(&descriptor_, SECURITY_DESCRIPTOR_REVISION) ||
            !::SetSecurityDescriptorDacl(&descriptor_, TRUE, acl, FALSE))
            return last_error();
        attributes_ = {sizeof(SECURITY_ATTRIBUTES), &descriptor_, FALSE};
        return {};
    }
    SECURITY_ATTRIBUTES* get() { return &attributes_; }

private:
    std::vector<std::uint8_t> user_;
    alignas(DWORD) std::vector<std::uint8_t> acl_;
    SECURITY_DESCRIPTOR descriptor_{};
    SECURITY_ATTRIBUTES attributes_{};
};

// Keeps one instance of the pipe listening at all times (so the name stays ours), hands
// connected instances out one at a time, and disconnects clients that arrive while one is
// attached. Shared state, so that completions outlive a destroyed listener safely.
class pipe_listener final : public listener {
public:
    pipe_listener(asio::any_io_executor ex, std::string name)
        : state_(std::make_shared<state>(std::move(ex), std::move(name))) {}
    ~pipe_listener() override { close(); }

    std::error_code start() {
        if (auto ec = state_->security.init()) return ec;
        // FILE_FLAG_FIRST_PIPE_INSTANCE makes creation fail if the name exists; Wine ignores the
        // flag, so look first as well (a pipe that exists answers WaitNamedPipe with success or a
        // timeout, never "not found").
        if (::WaitNamedPipeW(widen(state_->name).c_str(), 1) || ::GetLastError() != ERROR_FILE_NOT_FOUND)
            return std::make_error_code(std::errc::address_in_use);
        return listen(state_, /*first=*/true);
    }

    void async_open(stream_handler handler) override {
        auto& s = *state_;
        if (s.waiting) {
            hand_over(s, std::move(*s.waiting), std::move(handler));
            s.waiting.reset();
        } else {
            s.pending = std::move(handler);
        }
    }
    void close() override {
        auto& s = *state_;
        s.closed = true;
        // A waiting async_open ends now (and lets go of what its handler holds).
        if (auto h = std::exchange(s.pending, nullptr))
            asio::post(s.executor, [h = std::move(h)] { h(asio::error::operation_aborted, nullptr); });
        std::error_code ignored;
        if (s.listening) s.listening->close(ignored);
        if (s.waiting) s.waiting->close(ignored);
    }
    std::string describe() const override { return "listening on pipe " + state_->name; }
    asio::any_io_executor get_executor() const override { return state_->executor; }
    std::uint16_t local_port() const override { return 0; }
    std::size_t refused() const override { return state_->refused; }

private:
    struct state {
        state(asio::any_io_executor ex, std::string n) : executor(std::move(ex)), name(std::move(n)) {}
        asio::any_io_executor executor;
        std::string name;
        owner_only_security security;
        std::optional<handle_stream> listening;  // waiting for a client to connect
        std::optional<handle_stream> waiting;    // connected before anyone asked for it
        stream_handler pending;
        std::shared_ptr<bool> attached = std::make_shared<bool>(false);
        std::size_t refused = 0;
        bool closed = false;
    };

    static void hand_over(state& s, handle_stream pipe, stream_handler handler) {
        *s.attached = true;
        handler({}, std::make_unique<asio_byte_stream<handle_stream>>(std::move(pipe), "pipe " + s.name,
                                                                      [attached = s.attached] { *attached = false; }));
    }

    // Creates an instance if none is listening, and waits for a client on it.
    static std::error_code listen(const std::shared_ptr<state>& sp, bool first = false) {
        auto& s = *sp;
        if (!s.listening) {
            HANDLE h = ::CreateNamedPipeW(widen(s.name).c_str(),
                                          PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED | (first ? FILE_FLAG_FIRST_PIPE_INSTANCE : 0),
                                          PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS,
                                          PIPE_UNLIMITED_INSTANCES, 64 * 1024, 64 * 1024, 0, s.security.get());
            if (h == INVALID_HANDLE_VALUE) return last_error();
            s.listening.emplace(s.executor, h);
        }
        asio::windows::overlapped_ptr op(s.executor, [sp](std::error_code ec, std::size_t) { on_connected(sp, ec); });
        const BOOL ok = ::ConnectNamedPipe(s.listening->native_handle(), op.get());
        const DWORD error = ::GetLastError();
        if (!ok && error == ERROR_PIPE_CONNECTED) op.complete({}, 0);  // the client was quicker
        else if (!ok && error != ERROR_IO_PENDING) op.complete(std::error_code(static_cast<int>(error), std::system_category()), 0);
        else op.release();
        return {};
    }

    static void on_connected(const std::shared_ptr<state>& sp, std::error_code ec) {
        auto& s = *sp;
        if (s.closed || ec == asio::error::operation_aborted) return;
        if (ec) {
            // This instance is unusable: drop it and try a fresh one.
            s.listening.reset();
            if (auto e = listen(sp); e && s.pending) std::exchange(s.pending, nullptr)(e, nullptr);
            return;
        }
        if (*s.attached || s.waiting) {
            // One debugger at a time: turn this one away and listen again on the same instance.
            ::DisconnectNamedPipe(s.listening->native_handle());
            ++s.refused;
            listen(sp);
            return;
        }
        handle_stream connected = std::move(*s.listening);
        s.listening.reset();
        if (s.pending) hand_over(s, std::move(connected), std::exchange(s.pending, nullptr));
        else s.waiting.emplace(std::move(connected));
        if (auto e = listen(sp); e && s.pending) std::exchange(s.pending, nullptr)(e, nullptr);
    }

    std::shared_ptr<state> state_;
};

class pipe_client final : public link {
public:
    pipe_client(asio::any_io_executor ex, std::string name) : executor_(std::move(ex)), name_(std::move(name)) {}

    void async_open(stream_handler handler) override {
        HANDLE h = ::CreateFileW(widen(name_).c_str(), GENERIC_READ | GENERIC_WRITE, 0, nullptr, OPEN_EXISTING,
                                 FILE_FLAG_OVERLAPPED, nullptr);
        std::error_code ec;
        std::unique_ptr<byte_stream> stream;
        if (h == INVALID_HANDLE_VALUE) ec = last_error();
        else stream = std::make_unique<asio_byte_stream<handle_stream>>(handle_stream(executor_, h), "pipe " + name_);
        asio::post(executor_, [handler = std::move(handler), ec, s = std::move(stream)]() mutable { handler(ec, std::move(s)); });
    }
    void close() override {}
    std::string describe() const override { return "pipe " + name_; }
    asio::any_io_executor get_executor() const override { return executor_; }

private:
    asio::any_io_executor executor_;
    std::string name_;
};

}  // namespace

std::unique_ptr<link> make_pipe_listener(const asio::any_io_executor& ex, std::string name, std::error_code& ec) {
    auto l = std::make_unique<pipe_listener>(ex, std::move(name));
    if ((ec = l->start())) return nullptr;
    return l;
}

std::unique_ptr<link> make_pipe_client(const asio::any_io_executor& ex, std::string name) {
    return std::make_unique<pipe_client>(ex, std::move(name));
}

}  // namespace kdcom::net
