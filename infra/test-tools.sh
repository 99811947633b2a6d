#!/usr/bin/env bash
# Everything `npm test` needs before jest starts: the Go-built tools (infra/bootstrap.sh) and the
# QEMU guest image (infra/images/build.sh). The Go builds use both cores and run one after
# another; the image build waits mostly on Debian's mirror and dpkg, so it runs beside them
# instead of after them (about 7 min saved on a fresh machine). Both are cached: a second run
# takes a second. Exits non-zero if either part failed, after both have finished.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

bash "$here/images/build.sh" &
image_pid=$!

bash "$here/bootstrap.sh" temporal versitygw jaeger gitea temporal-server temporal-sql-tool
tools_status=$?

wait "$image_pid"
image_status=$?

if ((tools_status != 0)); then echo "[test-tools] building the Go tools failed (see [bootstrap] above)" >&2; fi
if ((image_status != 0)); then echo "[test-tools] building the guest image failed (see [image] above)" >&2; fi
((tools_status == 0 && image_status == 0))
