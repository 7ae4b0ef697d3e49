#!/bin/sh
# Write the page at start, so it can name the container (or pod) that serves it.
mkdir -p /www
cat > /www/index.html <<PAGE
<!doctype html>
<html><head><title>course web $VERSION</title></head>
<body><h1>Course web app $VERSION</h1>
<p>$MESSAGE</p>
<p>Served by $(hostname)</p></body></html>
PAGE
echo "$VERSION" > /www/version
hostname > /www/host
echo ok > /www/healthz
echo "web $VERSION starting on port 80"
# -f: stay in the foreground; -vv: log each request (a url: line, then a response: line).
# This script stays PID 1 and passes SIGTERM on, because the kernel ignores SIGTERM for a PID 1
# without a handler: without the trap, `docker stop` and pod deletion would wait for the grace
# period, then SIGKILL.
httpd -f -vv -p 80 -h /www &
server=$!
trap 'kill "$server"; exit 0' TERM INT
wait "$server"
