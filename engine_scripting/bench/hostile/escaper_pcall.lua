-- escaper_pcall.lua (hostile): tries a binary chunk inside pcall, every tick. Catching the error
-- does not help: the violation is recorded and the script is disabled.
function on_update(self) pcall(load, string.char(27) .. "Lua") end
