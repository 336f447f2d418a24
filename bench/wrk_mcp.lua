-- wrk script for MCP `tools/call` echo requests (driven by bench/run.py).
--
--   wrk -t1 -c32 -d10s -s bench/wrk_mcp.lua http://127.0.0.1:P/mcp -- <session-id|-> <protocol> <modern 0|1> <max-per-thread|0> [<authorization>|-]
--
-- Every request carries a fresh JSON-RPC id (ids must not repeat within a session). The id is a
-- fixed-width 13-digit number so the request is three pre-built strings and one concatenation: cheap
-- enough that wrk stays far from being the bottleneck. Each answer is checked (HTTP 200 and no
-- JSON-RPC `"error"` member); the first bad answer of each thread is kept verbatim for the report.

local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  local sid, version, modern = args[1] or "-", args[2] or "2025-11-25", args[3] == "1"
  max_requests = tonumber(args[4] or "0") or 0
  local headers = {
    ["Content-Type"] = "application/json",
    ["Accept"] = "application/json, text/event-stream",
    ["Mcp-Protocol-Version"] = version,
  }
  if sid ~= "-" then headers["Mcp-Session-Id"] = sid end
  local authorization = args[5] or "-"
  if authorization ~= "-" then headers["Authorization"] = authorization end
  local params = '"params":{"name":"echo","arguments":{"text":"hi"}}'
  if modern then
    headers["Mcp-Method"] = "tools/call"
    headers["Mcp-Name"] = "echo"
    params = '"params":{"name":"echo","arguments":{"text":"hi"},"_meta":{'
      .. '"io.modelcontextprotocol/protocolVersion":"2026-07-28",'
      .. '"io.modelcontextprotocol/clientCapabilities":{"elicitation":{},"roots":{}}}}'
  end
  base = 1000000000000 + tid * 10000000000  -- 13 digits for any tid < 90
  local marker = "@@ID@@"
  local body = '{"jsonrpc":"2.0","id":' .. marker .. ',"method":"tools/call",' .. params .. '}'
  local sized = body:gsub(marker, tostring(base))  -- same length as every id we will send
  local raw = wrk.format("POST", nil, headers, sized)
  local at = raw:find(tostring(base), raw:find("\r\n\r\n", 1, true), true)
  head, tail = raw:sub(1, at - 1), raw:sub(at + #tostring(base))
  sent, answered, ok, bad, rpc_errors, first_bad = 0, 0, 0, 0, 0, ""
  statuses = {}
end

function request()
  sent = sent + 1
  return head .. tostring(base + sent) .. tail
end

function response(status, headers, body)
  answered = answered + 1
  if status ~= 200 then
    bad = bad + 1
    local key = tostring(status)
    statuses[key] = (statuses[key] or 0) + 1
    if first_bad == "" then first_bad = "HTTP " .. status .. " " .. (body or "") end
  elseif body:find('"error":{', 1, true) then
    rpc_errors = rpc_errors + 1
    if first_bad == "" then first_bad = "HTTP 200 " .. body end
  else
    ok = ok + 1
  end
  if max_requests > 0 and answered >= max_requests then
    wrk.thread:stop()
  end
end

local function clean(s)
  return (s:gsub("[\r\n\t]", " "))
end

function done(summary, latency, requests)
  local ok_total, bad_total, rpc_total = 0, 0, 0
  for _, t in ipairs(threads) do
    ok_total = ok_total + (t:get("ok") or 0)
    bad_total = bad_total + (t:get("bad") or 0)
    rpc_total = rpc_total + (t:get("rpc_errors") or 0)
    local fb = t:get("first_bad") or ""
    if fb ~= "" then io.write("WRK_FIRST_BAD\t", clean(fb):sub(1, 2000), "\n") end
    local st = t:get("statuses") or {}
    for code, n in pairs(st) do io.write("WRK_STATUS\t", code, "\t", n, "\n") end
  end
  local e = summary.errors
  io.write(string.format(
    "WRK_RESULT\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%.1f\t%d\t%d\t%d\t%d\n",
    summary.duration, summary.requests, ok_total, bad_total, rpc_total,
    e.connect, e.read, e.write, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
