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
echo ok > /www/healthz
echo "web $VERSION starting on port 80"
# -f: stay in the foreground (the container lives as long as this process); -v: log each request.
exec httpd -f -v -p 80 -h /www
