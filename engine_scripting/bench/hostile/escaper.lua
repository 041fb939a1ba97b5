-- escaper.lua (hostile): looks for a way out of the sandbox, then tries a binary chunk.
function on_update(self, dt)
  local probes = {
    os = os, io = io, debug = debug, require = require, package = package,
    python = python, dump = string.dump, loadfile = loadfile,
  }
  for name, value in pairs(probes) do print("escaper found", name, value) end
  print("escaper: all escape routes absent")
  load(string.char(27) .. "Lua binary chunk")   -- a security violation: disabled
end
