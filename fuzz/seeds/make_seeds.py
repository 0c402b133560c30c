#!/usr/bin/env python3
"""Writes the committed seed inputs of the fuzz targets (fuzz/seeds/<target>/<name>).

Each target's input layout is described at the top of fuzz/fuzz_targets/<target>.rs.
Re-run after changing a layout: python3 fuzz/seeds/make_seeds.py
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    os.makedirs(os.path.join(HERE, target), exist_ok=True)
    with open(os.path.join(HERE, target, name), "wb") as f:
        f.write(data)


# ---------------------------------------------------------------- http_request
KEY = b"dGhlIHNhbXBsZSBub25jZQ=="
RFC = (b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n"
       b"Connection: Upgrade\r\nSec-WebSocket-Key: " + KEY + b"\r\n"
       b"Origin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\n"
       b"Sec-WebSocket-Version: 13\r\n\r\n")
BROWSER = (b"GET /ws/chat?room=a%20b&token=x+y&x HTTP/1.1\r\nHost: localhost:8080\r\n"
           b"Connection: keep-alive, Upgrade\r\nPragma: no-cache\r\nUpgrade: websocket\r\n"
           b"Origin: https://example.com\r\nSec-WebSocket-Version: 13\r\n"
           b"User-Agent: Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0 Safari/537.36\r\n"
           b"Accept-Encoding: gzip, deflate, br\r\nAccept-Language: en-US,en;q=0.9\r\n"
           b"Sec-WebSocket-Key: " + KEY + b"\r\n"
           b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
           b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58")
write("http_request", "rfc6455", RFC)
write("http_request", "browser", BROWSER)
write("http_request", "bare_lf", RFC.replace(b"\r\n", b"\n"))
write("http_request", "version_8", RFC.replace(b"Version: 13", b"Version: 8"))
write("http_request", "bad_key", RFC.replace(KEY, b"dGhlIHNhbXBsZSBub25jZR=="))
write("http_request", "post_body", b"POST /x?a=1 HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc")
write("http_request", "plain_get", b"GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n")
write("http_request", "partial", RFC[:40])
write("http_request", "garbage", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")

# ---------------------------------------------------------------- frame_reader
# Input: [limits, split, stream...]; limits 0x1F = 16 MiB, 4096 fragments, masks required.
DEFAULT = 0x1F


def frame(opcode, payload, fin=True, mask=b"\x37\xfa\x21\x3d", rsv=0, length=None):
    n = len(payload) if length is None else length
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    bit = 0x80 if mask is not None else 0
    if n < 126:
        head += bytes([bit | n])
    elif n <= 0xFFFF:
        head += bytes([bit | 126]) + struct.pack(">H", n)
    else:
        head += bytes([bit | 127]) + struct.pack(">Q", n)
    if mask is None:
        return head + payload
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def close(code, reason=b""):
    return frame(8, struct.pack(">H", code) + reason)


def reader(name, stream, limits=DEFAULT, split=0x03):
    write("frame_reader", name, bytes([limits, split]) + stream)


reader("text_hello", frame(1, b"Hello"))
reader("text_hello_bytewise", frame(1, b"Hello"), split=0x00)
reader("fragmented_with_ping",
       frame(1, b"Hel", fin=False) + frame(9, b"ping") + frame(0, "lo κό".encode(), fin=False)
       + frame(0, "σμε".encode()) + frame(10, b"") + close(1000, b"bye"),
       split=0x45)
reader("binary_200_then_close", frame(2, bytes(range(200))) + close(1001) + b"trailing",
       limits=0x1D, split=0x87)
reader("empty_close", frame(8, b"") + frame(1, b"after"))
reader("rsv1_allowed", frame(1, b"rsv", rsv=4) + frame(2, b"x"), limits=0x5F)
reader("unmasked_optional", frame(1, b"server", mask=None) + frame(2, b"m"), limits=0x3F)
reader("err_unmasked", frame(1, b"no mask", mask=None))
reader("err_reserved_opcode", frame(3, b"") + frame(1, b"x"))
reader("err_invalid_utf8", frame(1, b"ok\xed\xa0\x80no", fin=False) + frame(0, b""), split=0x01)
reader("err_close_code", close(1005))
reader("err_continuation", frame(0, b"orphan"))
reader("err_nonminimal", b"\x82\xfe\x00\x05" + b"\x00" * 9)
reader("err_too_big", frame(2, b"x" * 17), limits=0x1A)
reader("err_fragments", frame(2, b"a", fin=False) + frame(0, b"b", fin=False) + frame(0, b"c"),
       limits=0x0F)
reader("err_long_ping", frame(9, b"p" * 126))

# ---------------------------------------------------------------- utf8
# Input: [split, text...].
write("utf8", "ascii", b"\x03Hello, world")
write("utf8", "multibyte", b"\x01" + "κόσμε 𝄞 日本語 é".encode())
write("utf8", "surrogate", b"\x02ab\xed\xa0\x80cd")
write("utf8", "beyond_max", b"\x00\xce\xba\xf4\x90\x80\x80")
write("utf8", "truncated", b"\x05ok \xe2\x82")
write("utf8", "overlong", b"\x04\xc0\xaf \xe0\x80\xaf")

# ---------------------------------------------------------------- mask
# Input: [key0..key3, offset, align, split, payload...].
write("mask", "rfc", b"\x37\xfa\x21\x3d\x00\x00\x02Hello")
write("mask", "long_unaligned", b"\x01\x02\x03\x04\x05\x03\x11" + bytes(range(64)))

# ---------------------------------------------------------------- realtime_envelope
# Input: the text of one client message.
write("realtime_envelope", "room_message",
      b'{"message_type":"room_message","room":"general","data":{"content":"hi","n":[1,2.5,null]}}')
write("realtime_envelope", "seed_002", b'{"type":"room_message","room_id":"r","content":"\\u00e9","to":"u"}')
write("realtime_envelope", "private", b'{"id":"1","message_type":"private_message","to_user_id":"bob","data":{}}')
write("realtime_envelope", "bad_data", b'{"message_type":"join","room":7,"data":[1]}')
write("realtime_envelope", "deep", b'{"message_type":"ping","data":{"a":' + b"[" * 200 + b"]" * 200 + b"}}")
write("realtime_envelope", "not_json", b"{\"message_type\":")

# ---------------------------------------------------------------- realtime_upgrade
# Input: query token \n Authorization header \n offered subprotocols \n Origin.
JWT = (b"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsInVzZXJuYW1lIjoiQWxpY2UiLCJleHAiOjQ"
       b"xMDI0NDQ4MDB9.c2lnbmF0dXJl")
NONE = b"eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIiwidXNlcm5hbWUiOiJhIiwiZXhwIjo0MTAyNDQ0ODAwfQ."
write("realtime_upgrade", "query", JWT + b"\n\n\nhttps://app.example.com")
write("realtime_upgrade", "bearer", b"\nBearer " + JWT + b"\n\nhttps://x.example.org")
write("realtime_upgrade", "protocol", b"\n\naccess_token, " + JWT + b"\nhttp://a.test:8080")
write("realtime_upgrade", "alg_none", NONE + b"\n\n\nnull")
write("realtime_upgrade", "garbage", b"a.b.c\nBasic eA==\naccess_token\n10.0.0.0/8")

# ---------------------------------------------------------------- ocpp_frame
# Input: [version, text...]; version 0x00 is ocpp1.6, 0x01 ocpp2.0.1 (only the low bit counts).
V16, V201 = b"\x00", b"\x01"
BOOT16 = (b'[2,"19223201","BootNotification",{"chargePointVendor":"VendorX",'
          b'"chargePointModel":"SingleSocketCharger"}]')
BOOT201 = (b'[2,"b2f1c0de-0000-4000-8000-000000000001","BootNotification",{"reason":"PowerUp",'
           b'"chargingStation":{"model":"SingleSocketCharger","vendorName":"VendorX"}}]')
write("ocpp_frame", "call_16", V16 + BOOT16)
write("ocpp_frame", "call_201", V201 + BOOT201)
write("ocpp_frame", "result_16", V16 + b'[3,"19223201",{"status":"Accepted",'
      b'"currentTime":"2013-02-01T20:53:32.486Z","interval":300}]')
write("ocpp_frame", "result_201", V201 + b' [3, "7", {"currentTime": "2024-05-01T12:00:00Z"}]\n')
write("ocpp_frame", "error_16", V16 + b'[4,"162376037","OccurenceConstraintViolation",'
      b'"idTag missing",{"field":"idTag"}]')
write("ocpp_frame", "error_201", V201 + b'[4,"162376037","FormatViolation","bad",{}]')
write("ocpp_frame", "meter_values", V16 + b'[2,"m\\u00e9-\xe2\x98\x95","MeterValues",{"connectorId":1,'
      b'"transactionId":18446744073709551615,"meterValue":[{"timestamp":"2024-01-01T00:00:00Z",'
      b'"sampledValue":[{"value":"1.5e300","unit":"Wh"}]}],"x":[-9223372036854775808,0.1,-2.5e-300]}]')
# Payloads the schemas check (schema::validate): valid, and each kind of violation.
write("ocpp_frame", "start_16", V16 + b'[2,"19223202","StartTransaction",{"connectorId":1,'
      b'"idTag":"04E91C5A123480","meterStart":0,"timestamp":"2026-01-01T00:00:00.000Z"}]')
write("ocpp_frame", "boot_16_violations", V16 + b'[2,"19223203","BootNotification",'
      b'{"chargePointVendor":"VendorXVendorXVendorX","firmwareVersion":1,"colour":"red"}]')
write("ocpp_frame", "start_16_bad_time", V16 + b'[2,"19223204","StartTransaction",{"connectorId":1,'
      b'"idTag":"TAG","meterStart":0,"timestamp":"yesterday"}]')
write("ocpp_frame", "transaction_event_201", V201 + b'[2,"t1","TransactionEvent",{"eventType":"Started",'
      b'"timestamp":"2026-01-01T00:00:00Z","triggerReason":"Authorized","seqNo":0,'
      b'"transactionInfo":{"transactionId":"tx-1"},"idToken":{"idToken":"TAG","type":"ISO14443"},'
      b'"evse":{"id":1,"connectorId":1}}]')
write("ocpp_frame", "err_not_json", V201 + b'[2,"a","Heartbeat",{}')
write("ocpp_frame", "err_not_array", V16 + b'{"0":2,"1":"a","2":"Heartbeat","3":{}}')
write("ocpp_frame", "err_type", V201 + b'[5,"a",{}]')
write("ocpp_frame", "err_type_string", V16 + b'["2","a","Heartbeat",{}]')
write("ocpp_frame", "err_id_number", V201 + b'[2,17,"Heartbeat",{}]')
write("ocpp_frame", "err_id_37", V16 + b'[2,"' + b"x" * 37 + b'","Heartbeat",{}]')
write("ocpp_frame", "err_id_empty", V201 + b'[3,"",{}]')
write("ocpp_frame", "err_short_call", V16 + b'[2,"a","Heartbeat"]')
write("ocpp_frame", "err_payload_array", V201 + b'[2,"a","Heartbeat",[]]')
write("ocpp_frame", "err_four_element_error", V16 + b'[4,"a","GenericError","no details"]')
write("ocpp_frame", "err_deep", V201 + b'[2,"a","DataTransfer",{"d":' + b"[" * 80 + b"]" * 80 + b"}]")

# ----------------------------------------------------------- deflate_negotiate
# Input: [window, offers...]; offers are the comma-separated Sec-WebSocket-Extensions elements.
write("deflate_negotiate", "browser", b"\x0f" + b"permessage-deflate; client_max_window_bits")
write("deflate_negotiate", "autobahn_three", b"\x0c"
      b"permessage-deflate; client_no_context_takeover; client_max_window_bits; "
      b"server_no_context_takeover; server_max_window_bits=9, "
      b"permessage-deflate; client_no_context_takeover; client_max_window_bits; "
      b"server_no_context_takeover, permessage-deflate; client_no_context_takeover; "
      b"client_max_window_bits")
write("deflate_negotiate", "python", b"\x0a"
      b"permessage-deflate; server_max_window_bits=12; client_max_window_bits=12")
write("deflate_negotiate", "quoted_case", b"\x00"
      b'PerMessage-Deflate ;\tServer_Max_Window_Bits = "1\\0" ; client_max_window_bits="8"')
write("deflate_negotiate", "declined_then_ok", b"\xff"
      b"x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=8, "
      b"permessage-deflate; client_max_window_bits; client_max_window_bits, "
      b'permessage-deflate; server_max_window_bits="010", permessage-deflate')

# --------------------------------------------------------------------- inflate
# [limit, config, cut1, cut2, messages...]: limit * 256 + 1 bytes; config bits 0-2 window bits
# past 8, bit 3 no_context_takeover, bits 4-5 the message count (1 + n % 3), 6-7 the level.
HELLO = bytes([0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00])    # RFC 7692 7.2.3.1
HELLO_AGAIN = bytes([0xf2, 0x00, 0x11, 0x00, 0x00])          # 7.2.3.2, with the context
STORED = bytes([0x00, 0x05, 0x00, 0xfa, 0xff]) + b"Hello\x00"  # 7.2.3.3
FINAL = bytes([0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00])  # 7.2.3.4
TWO_BLOCKS = bytes([0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00])


def inflate_seed(limit, config, *messages):
    """The cut bytes that split the rest back into `messages` (at most 3)."""
    rest = b"".join(messages)
    ends = [sum(map(len, messages[:i + 1])) for i in range(len(messages) - 1)] or [0]
    cuts = [-(-end * 256 // len(rest)) for end in ends]
    return bytes([limit, config, cuts[0], cuts[-1]]) + rest


write("inflate", "hello", inflate_seed(1, 0x0f, HELLO))
write("inflate", "takeover", inflate_seed(1, 0x17, HELLO, HELLO_AGAIN))
write("inflate", "stored_final_two", inflate_seed(0, 0x2f, STORED, FINAL, TWO_BLOCKS))
write("inflate", "tight_limit", inflate_seed(0, 0x4f, STORED))
