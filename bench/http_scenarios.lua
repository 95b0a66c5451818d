-- wrk script for bench/http_bench.py. Configured by environment variables, because wrk decides
-- whether requests are static (pre-built once, the fast path) from the script's top level,
-- before init() sees any argument:
--
--   HTTP_BENCH_MODE       get (default): wrk's own static request for the URL given to wrk
--                         submit: every request is a POST of a distinct comment
--                         mixed:  9 requests in 10 are a GET of the URL, 1 in 10 a submission
--                         isso:   every request a distinct comment in Isso's format (bench/isso_bench.py)
--   HTTP_BENCH_POST_PATH  where submissions go (submit, mixed)
--   HTTP_BENCH_NONCE      makes texts and emails distinct across runs of the same scenario
--
-- Whatever the mode, done() prints one line "HTTP_BENCH_RESULT {json}" with exact counts and
-- latency percentiles (microseconds), which the harness parses instead of wrk's text summary.

local mode = os.getenv("HTTP_BENCH_MODE") or "get"
local post_path = os.getenv("HTTP_BENCH_POST_PATH") or "/api/v1/articles/bench-submit/comments"
local nonce = os.getenv("HTTP_BENCH_NONCE") or "0"

local WORDS = {
  "the", "council", "said", "that", "budget", "plans", "for", "new", "library", "would",
  "be", "reviewed", "next", "week", "while", "residents", "asked", "whether", "parking",
  "and", "bus", "routes", "near", "station", "could", "change", "soon", "given", "long",
  "delays", "many", "of", "them", "reported", "after", "meeting", "on", "tuesday", "evening",
  "about", "schools", "roads", "park", "summer", "market", "river", "bridge", "repairs",
}
local NWORDS = #WORDS

-- setup() runs in the main Lua state once per wrk thread: hand each thread its number.
local threads_made = 0
function setup(thread)
  threads_made = threads_made + 1
  thread:set("tid", threads_made)
end

local counter = 0
local post_headers = nil
local read_request = nil

-- Made-up words mixed into the prose, so that two requests' texts share few word pairs:
-- ordinary comments, not one "campaign" (service/moderation/campaigns.py would hold those).
local SYLLABLES = {
  "ka", "lo", "mi", "ren", "tu", "sa", "ve", "dor", "pi", "nal", "bo", "ste", "gri", "fu",
  "mon", "ta", "le", "wen", "ko", "ris",
}
local NSYLLABLES = #SYLLABLES

-- ~300 characters of plain prose (no links, no profanity), different for every request: each
-- request seeds the generator from its thread, counter and the run's nonce, and the reference
-- at the end makes it unique.
-- A seed from a request's reference (a polynomial string hash): distinct references give
-- distinct texts, across threads and runs.
local function seed_of(reference)
  local h = 7
  for i = 1, #reference do h = (h * 131 + reference:byte(i)) % 2147483647 end
  return h
end

local function comment_text(n)
  local reference = nonce .. "-" .. (tid or 0) .. "-" .. n
  math.randomseed(seed_of(reference))
  local parts = {}
  local length = 0
  while length < 270 do
    local word
    if math.random() < 0.5 then
      word = WORDS[math.random(NWORDS)]
    else
      word = SYLLABLES[math.random(NSYLLABLES)] .. SYLLABLES[math.random(NSYLLABLES)]
    end
    parts[#parts + 1] = word
    length = length + #word + 1
  end
  return table.concat(parts, " ") .. " (ref " .. reference .. ")"
end

local function submission()
  counter = counter + 1
  local id = nonce .. "t" .. (tid or 0) .. "n" .. counter
  local body = '{"name":"Bench reader ' .. id .. '","email":"reader-' .. id
    .. '@example.com","comment":"' .. comment_text(counter) .. '"}'
  return wrk.format("POST", post_path, post_headers, body)
end

-- The same comment in Isso's format (POST /new?uri=...): text, author, email.
local function isso_submission()
  counter = counter + 1
  local id = nonce .. "t" .. (tid or 0) .. "n" .. counter
  local body = '{"author":"Bench reader ' .. id .. '","email":"reader-' .. id
    .. '@example.com","text":"' .. comment_text(counter) .. '"}'
  return wrk.format("POST", post_path, post_headers, body)
end

function init(args)
  post_headers = {
    ["Host"] = wrk.headers["Host"],
    ["Content-Type"] = "application/json",
    ["Accept"] = "application/json",
  }
  read_request = wrk.format("GET", wrk.path)
end

if mode == "submit" then
  function request()
    return submission()
  end
elseif mode == "isso" then
  function request()
    return isso_submission()
  end
elseif mode == "mixed" then
  local calls = 0
  function request()
    calls = calls + 1
    if calls % 10 == 0 then
      return submission()
    end
    return read_request
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'HTTP_BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,'
      .. '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,'
      .. '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
