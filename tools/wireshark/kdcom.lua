-- Wireshark dissector for KDCOM, the Windows kernel debugger's serial framing, as kdcom captures
-- record it: pcapng, LINKTYPE_USER0 (147), one frame per read or write, the direction in the
-- packet flags (outbound: debugger to target; inbound: target to debugger).
--
--   wireshark -X lua_script:tools/wireshark/kdcom.lua capture.pcapng
--   tshark -X lua_script:tools/wireshark/kdcom.lua -r capture.pcapng
-- or copy this file into Wireshark's personal plugins folder.
--
-- Each direction is a byte stream: packets may span frames and frames may hold several packets.
-- The dissector decodes each direction in frame order (the first pass), with the rules of kdcom's
-- own decoder (docs/protocol.md), and shows under each frame what completed in it: packets with
-- their type, id, length, checksum validity, trailer and the KD API they carry, break-ins,
-- framing errors and garbage.

local kdcom = Proto("kdcom", "KDCOM (Windows kernel debugger serial framing)")

local type_names = {
    [0] = "UNUSED", [1] = "KD_STATE_CHANGE32", [2] = "KD_STATE_MANIPULATE", [3] = "KD_DEBUG_IO",
    [4] = "KD_ACKNOWLEDGE", [5] = "KD_RESEND", [6] = "KD_RESET", [7] = "KD_STATE_CHANGE64",
    [8] = "KD_POLL_BREAKIN", [9] = "KD_TRACE_IO", [10] = "KD_CONTROL_REQUEST", [11] = "KD_FILE_IO",
}
local data_types = { [1] = true, [2] = true, [3] = true, [7] = true, [9] = true, [10] = true, [11] = true }
local control_types = { [4] = true, [5] = true, [6] = true }

local manipulate_names = {
    "DbgKdReadVirtualMemoryApi", "DbgKdWriteVirtualMemoryApi", "DbgKdGetContextApi", "DbgKdSetContextApi",
    "DbgKdWriteBreakPointApi", "DbgKdRestoreBreakPointApi", "DbgKdContinueApi", "DbgKdReadControlSpaceApi",
    "DbgKdWriteControlSpaceApi", "DbgKdReadIoSpaceApi", "DbgKdWriteIoSpaceApi", "DbgKdRebootApi",
    "DbgKdContinueApi2", "DbgKdReadPhysicalMemoryApi", "DbgKdWritePhysicalMemoryApi",
    "DbgKdQuerySpecialCallsApi", "DbgKdSetSpecialCallApi", "DbgKdClearSpecialCallsApi",
    "DbgKdSetInternalBreakPointApi", "DbgKdGetInternalBreakPointApi", "DbgKdReadIoSpaceExtendedApi",
    "DbgKdWriteIoSpaceExtendedApi", "DbgKdGetVersionApi", "DbgKdWriteBreakPointExApi",
    "DbgKdRestoreBreakPointExApi", "DbgKdCauseBugCheckApi", false, false, false, false, false, false,
    "DbgKdSwitchProcessor", "DbgKdPageInApi", "DbgKdReadMachineSpecificRegister",
    "DbgKdWriteMachineSpecificRegister", "OldVlm1", "OldVlm2", "DbgKdSearchMemoryApi", "DbgKdGetBusDataApi",
    "DbgKdSetBusDataApi", "DbgKdCheckLowMemoryApi", "DbgKdClearAllInternalBreakpointsApi",
    "DbgKdFillMemoryApi", "DbgKdQueryMemoryApi", "DbgKdSwitchPartition", "DbgKdWriteCustomBreakpointApi",
    "DbgKdGetContextExApi", "DbgKdSetContextExApi",
}
local other_api_names = {
    [1] = { [0x3030] = "DbgKdExceptionStateChange", [0x3031] = "DbgKdLoadSymbolsStateChange",
            [0x3032] = "DbgKdCommandStringStateChange" },
    [3] = { [0x3230] = "DbgKdPrintStringApi", [0x3231] = "DbgKdGetStringApi" },
    [9] = { [0x3330] = "DbgKdPrintTraceApi" },
    [11] = { [0x3430] = "DbgKdCreateFileApi", [0x3431] = "DbgKdReadFileApi", [0x3432] = "DbgKdWriteFileApi",
             [0x3433] = "DbgKdCloseFileApi" },
}
other_api_names[7] = other_api_names[1]

local f = kdcom.fields
f.dir = ProtoField.string("kdcom.dir", "Direction")
f.kind = ProtoField.string("kdcom.kind", "Kind")
f.leader = ProtoField.string("kdcom.leader", "Leader")
f.type = ProtoField.uint16("kdcom.type", "Packet type", base.DEC, type_names)
f.type_name = ProtoField.string("kdcom.type_name", "Packet type name")
f.id = ProtoField.uint32("kdcom.id", "Packet id", base.HEX)
f.length = ProtoField.uint16("kdcom.length", "Byte count", base.DEC)
f.checksum = ProtoField.uint32("kdcom.checksum", "Checksum", base.HEX)
f.checksum_ok = ProtoField.bool("kdcom.checksum_ok", "Checksum valid")
f.trailer_ok = ProtoField.bool("kdcom.trailer_ok", "Trailer (0xAA) present")
f.api = ProtoField.string("kdcom.api", "KD API")
f.body = ProtoField.bytes("kdcom.body", "Body")
f.offset = ProtoField.uint64("kdcom.offset", "Stream offset", base.DEC)
f.garbage = ProtoField.uint32("kdcom.garbage", "Garbage bytes", base.DEC)
f.error = ProtoField.string("kdcom.error", "Framing error")
-- One line per event ("data 2 0x80800000 @123"), for tests and filters that compare event lists.
f.event = ProtoField.string("kdcom.event", "Event")

local direction_field = Field.new("frame.packet_flags_direction")

local max_body = 4000

local function u16(s, p) return s:byte(p) + s:byte(p + 1) * 256 end
local function u32(s, p) return u16(s, p) + u16(s, p + 2) * 65536 end

-- One direction's decoder: bytes not yet decoded, and the stream offset of the first of them.
local function new_stream() return { buf = "", base = 0 } end

local function api_name(ptype, body)
    if #body < 4 then return nil end
    local n = u32(body, 1)
    if ptype == 2 then
        local name = manipulate_names[n - 0x3130 + 1]
        return name or nil
    end
    local names = other_api_names[ptype]
    return names and names[n] or nil
end

-- Decodes what `st.buf` holds (plus `more`), appending events to `out`; keeps an incomplete frame
-- for the next call. With `final`, an incomplete frame is reported and dropped.
local function decode(st, more, out, final)
    local buf = st.buf .. more
    local n = #buf
    local i, last_end = 1, 1           -- next byte to scan; first byte not yet in an event
    local run_byte, run_len, run_start = nil, 0, nil
    local keep_from = nil

    local function emit(ev, at)
        if at > last_end then
            out[#out + 1] = { kind = "garbage", offset = st.base + last_end - 1, length = at - last_end }
        end
        ev.offset = st.base + at - 1
        out[#out + 1] = ev
    end
    local function reject(at, reason, header)
        local ev = { kind = "error", error = reason, offset = st.base + at - 1 }
        if header then for k, v in pairs(header) do ev[k] = v end end
        out[#out + 1] = ev
        run_byte, run_len = nil, 0
        return at + 1                  -- rescan from the byte after the first leader byte
    end

    while i <= n do
        local c = buf:byte(i)
        if c == 0x30 or c == 0x69 then
            if c == run_byte then run_len = run_len + 1 else run_byte, run_len, run_start = c, 1, i end
            i = i + 1
            if run_len == 4 then
                local s = run_start
                if n < s + 15 then keep_from = s break end
                local h = { leader = run_byte, type = u16(buf, s + 4), length = u16(buf, s + 6), id = u32(buf, s + 8),
                            checksum = u32(buf, s + 12) }
                h.type_name = type_names[h.type] or "UNKNOWN"
                if run_byte == 0x69 then
                    -- A control packet's Checksum is ignored, as peers ignore it (pykdclient sends
                    -- 0x000080C2); its ByteCount must be 0.
                    if not control_types[h.type] then
                        i = reject(s, "unknown packet type for this leader", h)
                    elseif h.length ~= 0 then
                        i = reject(s, "control packet with non-zero ByteCount", h)
                    else
                        h.kind = "control"
                        emit(h, s)
                        i, last_end, run_byte, run_len = s + 16, s + 16, nil, 0
                    end
                elseif not data_types[h.type] then
                    i = reject(s, "unknown packet type for this leader", h)
                elseif h.length > max_body then
                    i = reject(s, "ByteCount over the body limit", h)
                elseif n < s + 16 + h.length then
                    keep_from = s
                    break
                else
                    local body = buf:sub(s + 16, s + 15 + h.length)
                    local sum = 0
                    for k = 1, #body do sum = sum + body:byte(k) end
                    h.checksum_ok = (sum % 4294967296) == h.checksum
                    h.trailer_ok = buf:byte(s + 16 + h.length) == 0xAA
                    h.body = body
                    if not h.trailer_ok then
                        i = reject(s, "bad or missing packet trailer (expected 0xAA)", h)
                    elseif not h.checksum_ok then
                        i = reject(s, "bad checksum", h)
                    else
                        h.kind = "data"
                        h.api = api_name(h.type, body)
                        emit(h, s)
                        local after = s + 17 + h.length
                        i, last_end, run_byte, run_len = after, after, nil, 0
                    end
                end
            end
        else
            run_byte, run_len = nil, 0
            if c == 0x62 then
                emit({ kind = "breakin" }, i)
                last_end = i + 1
            end
            i = i + 1
        end
    end

    if keep_from == nil and run_len > 0 then keep_from = run_start end
    if final and keep_from then
        out[#out + 1] = { kind = "error", error = "stream ended inside a packet", offset = st.base + keep_from - 1 }
        keep_from = nil
    end
    local stop = keep_from or (n + 1)
    if stop > last_end then
        out[#out + 1] = { kind = "garbage", offset = st.base + last_end - 1, length = stop - last_end }
    end
    st.buf = buf:sub(stop)
    st.base = st.base + stop - 1
end

-- First-pass state: each direction's stream, and what each frame completed.
local streams, results

function kdcom.init()
    streams = { d2t = new_stream(), t2d = new_stream() }
    results = {}
end

function kdcom.dissector(tvb, pinfo, tree)
    pinfo.cols.protocol = "KDCOM"
    local flags = direction_field()
    local dir = (flags and flags.value == 1) and "t2d" or "d2t"
    local events = results[pinfo.number]
    if events == nil then
        events = {}
        decode(streams[dir], tvb:raw(), events, false)
        results[pinfo.number] = events
    end

    local root = tree:add(kdcom, tvb(), "KDCOM, " .. (dir == "d2t" and "debugger to target" or "target to debugger"))
    root:add(f.dir, dir)
    local summary = {}
    for _, ev in ipairs(events) do
        local label
        if ev.kind == "data" or ev.kind == "control" then
            label = ev.type_name .. (ev.api and (" " .. ev.api) or "") .. string.format(" id=0x%08x", ev.id)
        elseif ev.kind == "breakin" then
            label = "break-in"
        elseif ev.kind == "garbage" then
            label = ev.length .. " bytes of garbage"
        else
            label = "framing error: " .. ev.error
        end
        local item = root:add(kdcom, tvb(), label)
        item:add(f.kind, ev.kind)
        item:add(f.offset, UInt64(ev.offset))
        if ev.type then
            item:add(f.leader, ev.leader == 0x69 and "iiii (control)" or "0000 (data)")
            item:add(f.type, ev.type)
            item:add(f.type_name, ev.type_name)
            item:add(f.id, ev.id)
            item:add(f.length, ev.length)
            item:add(f.checksum, ev.checksum)
        end
        if ev.checksum_ok ~= nil then item:add(f.checksum_ok, ev.checksum_ok) end
        if ev.trailer_ok ~= nil then item:add(f.trailer_ok, ev.trailer_ok) end
        if ev.api then item:add(f.api, ev.api) end
        if ev.body and #ev.body > 0 then item:add(f.body, ByteArray.new(ev.body, true):tvb("KDCOM body")()) end
        if ev.kind == "garbage" then item:add(f.garbage, ev.length) end
        if ev.error then item:add(f.error, ev.error) end
        if ev.kind ~= "garbage" then
            summary[#summary + 1] = label
            local line = ev.kind
            if ev.type then line = line .. string.format(" %d 0x%08x", ev.type, ev.id) end
            item:add(f.event, line .. " @" .. string.format("%d", ev.offset))
        end
    end
    pinfo.cols.info = dir .. " " .. (#summary > 0 and table.concat(summary, "; ") or
                                     (#events > 0 and "garbage" or "(part of a packet)"))
    return tvb:len()
end

-- kdcom captures use LINKTYPE_USER0, which Wireshark calls wtap encapsulation USER0.
local encap = (wtap_encaps and wtap_encaps.USER0) or wtap.USER0
DissectorTable.get("wtap_encap"):add(encap, kdcom)
