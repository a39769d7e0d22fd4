// Everything in the kdcom protocol core: standard library and Boost.Endian only, no I/O.
#pragma once

#include "kdcom/decode/decoder.hpp"
#include "kdcom/decode/describe.hpp"
#include "kdcom/decode/event.hpp"
#include "kdcom/endpoint/config.hpp"
#include "kdcom/endpoint/droppable.hpp"
#include "kdcom/endpoint/endpoint.hpp"
#include "kdcom/endpoint/events.hpp"
#include "kdcom/error.hpp"
#include "kdcom/text/hex.hpp"
#include "kdcom/wire/checksum.hpp"
#include "kdcom/wire/constants.hpp"
#include "kdcom/wire/encoder.hpp"
#include "kdcom/wire/header.hpp"
#include "kdcom/wire/packet_type.hpp"
