#include <array>
#include <new>

#include <openssl/err.h>
#include <unistd.h>

#include <parley/tls/accepted_stream.hpp>
#include <parley/tls/handshake.hpp>

#include "ossl.hpp"

namespace parley::tls {

void SslFree::operator()(SSL* ssl) const {
  SSL_free(ssl);
}

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.release();
  }
  return *this;
}

UniqueFd::~UniqueFd() {
  if (fd_ >= 0) ::close(fd_);
}

ServerHandshake::ServerHandshake(std::shared_ptr<ServerContext> context)
    : context_(std::move(context)), ssl_(SSL_new(context_->tls())) {
  if (!ssl_) throw std::bad_alloc();
  input_ = BIO_new(BIO_s_mem());
  outputBio_ = BIO_new(BIO_s_mem());
  if (!input_ || !outputBio_) {
    BIO_free(input_);
    BIO_free(outputBio_);
    throw std::bad_alloc();
  }
  // An empty memory BIO reports "retry" rather than end of file, so OpenSSL asks for more.
  BIO_set_mem_eof_return(input_, -1);
  SSL_set_bio(ssl_.get(), input_, outputBio_);  // ssl_ owns both from here on
  SSL_set_accept_state(ssl_.get());
}

ServerHandshake::~ServerHandshake() = default;

ServerHandshake::State ServerHandshake::feed(std::span<const std::uint8_t> received) {
  if (state_ == State::Failed || state_ == State::Closed) return state_;
  if (!received.empty() && BIO_write(input_, received.data(), static_cast<int>(received.size())) !=
                               static_cast<int>(received.size())) {
    error_ = "cannot buffer received bytes";
    state_ = State::Failed;
    return state_;
  }
  if (state_ == State::Handshaking) {
    ERR_clear_error();
    const int result = SSL_do_handshake(ssl_.get());
    if (result == 1) {
      state_ = State::Established;
    } else {
      const int reason = SSL_get_error(ssl_.get(), result);
      if (reason != SSL_ERROR_WANT_READ && reason != SSL_ERROR_WANT_WRITE) {
        error_ = ossl::takeErrors("handshake failed");
        state_ = State::Failed;
      }
    }
  }
  if (state_ == State::Established) readPlaintext();
  drainOutput();
  return state_;
}

void ServerHandshake::readPlaintext() {
  // Decrypt every complete record now: the memory BIO must be empty at release, because the
  // next owner replaces it (a partial record is kept inside the SSL and survives that).
  std::array<std::uint8_t, 16384> chunk;
  for (;;) {
    ERR_clear_error();
    const int read = SSL_read(ssl_.get(), chunk.data(), static_cast<int>(chunk.size()));
    if (read > 0) {
      plaintext_.insert(plaintext_.end(), chunk.data(), chunk.data() + read);
      continue;
    }
    const int reason = SSL_get_error(ssl_.get(), read);
    if (reason == SSL_ERROR_WANT_READ || reason == SSL_ERROR_WANT_WRITE) return;
    if (reason == SSL_ERROR_ZERO_RETURN) {
      state_ = State::Closed;
    } else {
      error_ = ossl::takeErrors("decryption failed");
      state_ = State::Failed;
    }
    return;
  }
}

void ServerHandshake::drainOutput() {
  char* data = nullptr;
  const long size = BIO_get_mem_data(outputBio_, &data);
  if (size <= 0) return;
  output_.insert(output_.end(), data, data + size);
  (void)BIO_reset(outputBio_);
}

std::string_view ServerHandshake::alpn() const {
  if (!ssl_) return {};
  const unsigned char* protocol = nullptr;
  unsigned int length = 0;
  SSL_get0_alpn_selected(ssl_.get(), &protocol, &length);
  if (!protocol) return {};
  return {reinterpret_cast<const char*>(protocol), length};
}

UniqueSsl ServerHandshake::release() {
  if (state_ != State::Established || !output_.empty() || BIO_ctrl_pending(input_) != 0) {
    return nullptr;
  }
  state_ = State::Closed;
  return std::move(ssl_);
}

}  // namespace parley::tls
