// parley::auth: advisor passwords, signed invitation and set-up tokens, CSRF tokens, the token
// key file, TURN REST credentials, login throttling and rate limits. No I/O but the key file and
// no clock: callers pass `now`.
#pragma once

#include <parley/auth/encoding.hpp>
#include <parley/auth/key_file.hpp>
#include <parley/auth/password.hpp>
#include <parley/auth/throttle.hpp>
#include <parley/auth/token.hpp>
#include <parley/auth/turn_credential.hpp>
