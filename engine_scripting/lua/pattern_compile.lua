-- pattern_compile.lua: compiles Lua patterns for patterns.lua, and bounds their cost in C.
-- Runs once per Lua state as `local kit = ...`; uses only the kit's original functions.
-- Provides `_patterns`: the opcodes of a compiled pattern, `get_pattern` (a bounded cache of
-- compiled patterns), and the cost model that decides which calls may run on the C matcher: for
-- each pattern, the longest subject on which lstrlib.c's worst case stays below kit.c_call_ns.
local kit = ...
local B = kit.base
local byte, char = kit.string.byte, kit.string.char
local c_find = kit.string.find
local floor = kit.math.floor

-- Worst-case nanoseconds per unit of the cost model (item_cost below). Calibrated as C time /
-- model cost over pathological inputs (.-b, a*b, %a*b, 90-byte sets, a?^8 b, %b(), back-references,
-- plain find, gsub with %0 x30) on 3 KB to 300 KB subjects; the worst ratio was 1.05 ns/unit
-- (%a*b); 2.5 leaves a margin of 2.4 (docs/performance.md).
local NS_PER_STEP = 2.5
local BUDGET = (kit.c_call_ns or 0) / NS_PER_STEP   -- model steps one C call may take
local MAXCCALLS, MAXCAPTURES, CAP_UNF, CAP_POS = 200, 32, -1, -2
local CACHE_MAX = 256

-- Opcodes of a compiled pattern; one per item, in pattern order, END last.
local SINGLE, STAR, PLUS, MIN, OPT, OPEN, CLOSE, END, DOLLAR, BAL, FRONT, BREF, ERR =
  1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13

-- 256-entry membership tables (keys 0..255) for %-classes, computed by the C matcher itself so
-- that the locale's ctype agrees.
local class_tabs = {}
local function class_tab(cl)
  local t = class_tabs[cl]
  if t then return t end
  t = {}
  local pat = "^%" .. char(cl)
  for c = 0, 255 do t[c] = c_find(char(c), pat) ~= nil end
  class_tabs[cl] = t
  return t
end

local function is_class_letter(cl)
  local l = cl >= 65 and cl <= 90 and cl + 32 or cl
  return l == 97 or l == 99 or l == 100 or l == 103 or l == 108 or l == 112 or l == 115
    or l == 117 or l == 119 or l == 120 or l == 122
end

local lit_tabs = {}
local function lit_tab(c)
  local t = lit_tabs[c]
  if t == nil then
    t = {}
    for x = 0, 255 do t[x] = x == c end
    lit_tabs[c] = t
  end
  return t
end

local any_tab = {}
for x = 0, 255 do any_tab[x] = true end

-- Membership table of the set p[i..ec] ('[' at i, ']' at ec), as matchbracketclass reads it.
local function set_tab(p, i, ec)
  local B0 = function(j) return byte(p, j) or 0 end
  local mem, diff, classes = {}, {}, {}
  for x = 0, 256 do diff[x] = 0 end
  local sig = true
  local q = i
  if B0(q + 1) == 94 then sig = false; q = q + 1 end
  while true do
    q = q + 1
    if q >= ec then break end
    local c = B0(q)
    if c == 37 then
      q = q + 1
      local cl = B0(q)
      if is_class_letter(cl) then classes[cl] = true
      else diff[cl] = diff[cl] + 1; diff[cl + 1] = diff[cl + 1] - 1 end
    elseif B0(q + 1) == 45 and q + 2 < ec then
      local lo, hi = c, B0(q + 2)
      if lo <= hi then diff[lo] = diff[lo] + 1; diff[hi + 1] = diff[hi + 1] - 1 end
      q = q + 2
    else
      diff[c] = diff[c] + 1; diff[c + 1] = diff[c + 1] - 1
    end
  end
  local acc = 0
  for x = 0, 255 do acc = acc + diff[x]; mem[x] = acc > 0 end
  for cl in B.next, classes do
    local t = class_tab(cl)
    for x = 0, 255 do if t[x] then mem[x] = true end end
  end
  if not sig then for x = 0, 255 do mem[x] = not mem[x] end end
  return mem
end

-- classend: index after the single-char class starting at i, or nil and an error message.
local function classend(p, m, i)
  local c = byte(p, i)
  i = i + 1
  if c == 37 then
    if i > m then return nil, "malformed pattern (ends with '%')" end
    return i + 1
  elseif c == 91 then
    if byte(p, i) == 94 then i = i + 1 end
    repeat
      if i > m then return nil, "malformed pattern (missing ']')" end
      local cc = byte(p, i)
      i = i + 1
      if cc == 37 and i <= m then i = i + 1 end
    until byte(p, i) == 93
    return i + 1
  end
  return i
end

local function class_of(p, i, ep)
  local c = byte(p, i)
  if c == 46 then return any_tab end
  if c == 37 then
    local cl = byte(p, i + 1)
    return is_class_letter(cl) and class_tab(cl) or lit_tab(cl)
  end
  if c == 91 then return set_tab(p, i, ep - 1) end
  return lit_tab(c)
end

-- Worst-case model cost of one match() call from item 1, subject length n (floats: may be inf).
-- Unit: one byte compared or copied; entering an item (a match() call) costs CALLW units.
local CALLW = 4.0
local function item_cost(P, n)
  local op, w, always = P.op, P.w, P.always
  local C = CALLW + 0.0   -- floats throughout: integers would wrap around
  n = n + 0.0
  for k = P.K, 1, -1 do
    local o = op[k]
    if o == END or o == DOLLAR then C = CALLW + 0.0
    elseif o == SINGLE then C = C + w[k] + CALLW
    elseif o == STAR or o == PLUS then
      C = (n + 1) * w[k] + (always[k + 1] and C or (n + 1) * C) + CALLW
    elseif o == MIN then
      C = always[k + 1] and C + w[k] + CALLW or (n + 1) * (C + w[k]) + CALLW
    elseif o == OPT then C = w[k] + (always[k + 1] and C or 2 * C) + CALLW
    elseif o == OPEN or o == CLOSE then C = C + CALLW
    elseif o == BAL or o == BREF then C = C + n + CALLW
    elseif o == FRONT then C = C + 2 * w[k] + CALLW
    else C = 1 / 0 end
  end
  return C
end

-- Whole-call costs: find/match try n+1 starts; gmatch (all iterations) and gsub at most 2(n+1)
-- match() calls, plus copying captures and up to `r` bytes of replacement text per match.
local function find_cost(P, n)
  n = n + 0.0
  local C = item_cost(P, n)
  if not (P.anchored or P.always[1]) then C = C * (n + 1) end
  return C + (P.level + 1) * (n + 1) + 400
end
local function gsub_cost(P, n, r)
  n = n + 0.0
  return 2 * (n + 1) * (item_cost(P, n) + r + 64) + (P.level + 2 + r) * (n + 1) + 400
end

-- Largest subject length whose cost fits the budget (-1: none); costs grow with n.
local function limit(f, P, r)
  if f(P, 0, r) > BUDGET then return -1 end
  local lo, hi = 0, 1
  while hi < 2 ^ 40 and f(P, hi, r) <= BUDGET do lo, hi = hi, hi * 2 end
  while hi - lo > 1 do
    local mid = floor((lo + hi) / 2)
    if f(P, mid, r) <= BUDGET then lo = mid else hi = mid end
  end
  return lo
end

local SPECIALS = "[%^%$%*%+%?%.%(%[%%%-]"

local function compile(p, anchored)
  local m = #p
  local i = anchored and 2 or 1
  local op, set, w, a1, a2 = {}, {}, {}, {}, {}
  local capstate, level, nrec, k, has_err, has_bref = {}, 0, 0, 0, false, false
  while true do
    k = k + 1
    local c = byte(p, i)
    local e2 = byte(p, i + 1)
    if i > m then op[k] = END; break
    elseif c == 40 then
      if level >= MAXCAPTURES then op[k], a1[k] = ERR, "too many captures"; break end
      op[k], a1[k], a2[k] = OPEN, level, e2 == 41 and CAP_POS or CAP_UNF
      capstate[level] = a2[k]
      i = e2 == 41 and i + 2 or i + 1
      level = level + 1; nrec = nrec + 1
    elseif c == 41 then
      local l = level - 1
      while l >= 0 and capstate[l] ~= CAP_UNF do l = l - 1 end
      if l < 0 then op[k], a1[k] = ERR, "invalid pattern capture"; break end
      op[k], a1[k] = CLOSE, l
      capstate[l] = 0; nrec = nrec + 1; i = i + 1
    elseif c == 36 and i == m then op[k] = DOLLAR; break
    elseif c == 37 and e2 == 98 then
      if i + 2 >= m then
        op[k], a1[k] = ERR, "malformed pattern (missing arguments to '%b')"; break
      end
      op[k], a1[k], a2[k] = BAL, byte(p, i + 2), byte(p, i + 3)
      i = i + 4
    elseif c == 37 and e2 == 102 then
      i = i + 2
      if byte(p, i) ~= 91 then op[k], a1[k] = ERR, "missing '[' after '%f' in pattern"; break end
      local ep, msg = classend(p, m, i)
      if not ep then op[k], a1[k] = ERR, msg; break end
      op[k], set[k], w[k] = FRONT, set_tab(p, i, ep - 1), ep - i
      i = ep
    elseif c == 37 and e2 and e2 >= 48 and e2 <= 57 then
      local l = e2 - 49
      if l < 0 or l >= level or capstate[l] == CAP_UNF then
        op[k], a1[k] = ERR, "invalid capture index %" .. (l + 1); break
      end
      op[k], a1[k] = BREF, l
      has_bref = true; i = i + 2
    else
      local ep, msg = classend(p, m, i)
      if not ep then op[k], a1[k] = ERR, msg; break end
      set[k], w[k] = class_of(p, i, ep), ep - i
      local q = byte(p, ep)
      if q == 42 then op[k] = STAR elseif q == 43 then op[k] = PLUS
      elseif q == 45 then op[k] = MIN elseif q == 63 then op[k] = OPT
      else op[k] = SINGLE; ep = ep - 1 end
      if op[k] ~= SINGLE then nrec = nrec + 1 end
      i = ep + 1
    end
  end
  if op[k] == ERR then has_err = true end
  local P = {op = op, set = set, w = w, a1 = a1, a2 = a2, K = k, level = level,
             anchored = anchored, capunf = {}, unf = false}
  for l = 0, level - 1 do if capstate[l] == CAP_UNF then P.capunf[l] = true; P.unf = true end end
  local always = {}
  always[k + 1] = false
  for j = k, 1, -1 do
    local o = op[j]
    if o == END then always[j] = true
    elseif o == STAR or o == MIN or o == OPT or o == OPEN or o == CLOSE then
      always[j] = always[j + 1]
    else always[j] = false end
  end
  P.always = always
  -- Failed (item, position) states can be remembered when the outcome of a state depends on
  -- nothing else: no back-reference reads capture contents, and no path reaches MAXCCALLS.
  if not has_bref and nrec + 1 <= MAXCCALLS then
    local memok, any, later = {}, false, false
    for j = k, 1, -1 do
      local o = op[j]
      if o == STAR or o == PLUS or o == MIN or o == OPT or o == BAL then later = true end
      memok[j] = later
      if later then any = true end
    end
    if any then P.memok = memok end
  end
  -- First item needing a character (after position captures / opens): skip starts quickly.
  local j = 1
  while op[j] == OPEN do j = j + 1 end
  if op[j] == SINGLE or op[j] == PLUS then
    P.first = set[j]
    local c = byte(p, anchored and 2 or 1)
    if j == 1 and w[1] == 1 and c ~= 46 and c ~= 37 and c ~= 91 then P.firstch = char(c) end
  end
  P.nospecials = c_find(p, SPECIALS) == nil
  local fast = not has_err and not P.unf and nrec + 1 <= MAXCCALLS
  P.flim = fast and limit(find_cost, P) or -1
  P.glim = fast and limit(gsub_cost, P, 64) or -1
  return P
end

-- Compiled patterns by text: cache_a for find/match/gsub (a leading '^' anchors), cache_g for
-- gmatch. Cleared in place when full, so that callers may keep the tables.
local cache_a, cache_g, ncache = {}, {}, 0
local function get_pattern(p, gm)
  local c = gm and cache_g or cache_a
  local P = c[p]
  if P then return P end
  if ncache >= CACHE_MAX then
    for key in B.next, cache_a do cache_a[key] = nil end
    for key in B.next, cache_g do cache_g[key] = nil end
    ncache = 0
  end
  P = compile(p, not gm and byte(p, 1) == 94)
  c[p] = P
  ncache = ncache + 1
  return P
end

return {_patterns = {
  SINGLE = SINGLE, STAR = STAR, PLUS = PLUS, MIN = MIN, OPT = OPT, OPEN = OPEN, CLOSE = CLOSE,
  END = END, DOLLAR = DOLLAR, BAL = BAL, FRONT = FRONT, BREF = BREF, ERR = ERR,
  MAXCCALLS = MAXCCALLS, CAP_POS = CAP_POS, CACHE_MAX = CACHE_MAX,
  BUDGET = BUDGET, NS_PER_STEP = NS_PER_STEP, any_tab = any_tab,
  cache_a = cache_a, cache_g = cache_g, get_pattern = get_pattern,
  find_cost = find_cost, gsub_cost = gsub_cost,
}}
