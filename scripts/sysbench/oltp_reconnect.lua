-- oltp_reconnect.lua: sysbench's own OLTP scripts, with a reconnect that
-- works with Debian's sysbench. Its built-in reconnect (--mysql-ignore-errors
-- with 2013) reuses a closed MariaDB Connector/C handle and crashes
-- (akopytov/sysbench#527). Here a failed transaction is counted, the
-- connection is opened anew (a new handle), the statements are prepared
-- again, and sysbench counts the event as an ignored error.
--
--   CARBIDE_OLTP=oltp_write_only sysbench scripts/sysbench/oltp_reconnect.lua ... run
--
-- CARBIDE_OLTP names the stock script (oltp_read_write by default). Each
-- thread prints, when it ends:
--   carbide-oltp: thread N failed=F reconnects=R
-- F transactions failed (rolled back by the server or refused); none of
-- them was acknowledged.

local dir = os.getenv("CARBIDE_SYSBENCH_DIR") or "/usr/share/sysbench"
package.path = dir .. "/?.lua;" .. package.path
dofile(dir .. "/" .. (os.getenv("CARBIDE_OLTP") or "oltp_read_write") .. ".lua")

local ffi = require("ffi")
ffi.cdef [[int usleep(unsigned int usec);]]

local stock_event, stock_done = event, thread_done
local failed, reconnects = 0, 0

local function reconnect()
   pcall(function() con:disconnect() end)
   while not pcall(thread_init) do
      ffi.C.usleep(20000)
   end
   reconnects = reconnects + 1
end

function event()
   local ok, err = pcall(stock_event)
   if ok then
      return
   end
   if type(err) == "table" and err.errcode == sysbench.error.RESTART_EVENT then
      error(err, 0) -- a deadlock sysbench retries by itself
   end
   failed = failed + 1
   reconnect()
   error({errcode = sysbench.error.RESTART_EVENT}, 0)
end

function thread_done()
   print(string.format("carbide-oltp: thread %d failed=%d reconnects=%d", sysbench.tid, failed, reconnects))
   pcall(stock_done)
end
