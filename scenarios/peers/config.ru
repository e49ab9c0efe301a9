# The Rack application of the Ruby peer rows `puma`, `unicorn` and `thin` (scenario_types.py
# PEERS): every request is answered 200 text/plain "Hello, world!" with Content-Length 13, like
# GET / of the models. Loaded as it is (not rendered): the servers are given its path.
# The headers and body are frozen once, so a request allocates only what the server itself does.
HEADERS = { "Content-Type" => "text/plain", "Content-Length" => "13" }.freeze
BODY = ["Hello, world!".freeze].freeze

run ->(_env) { [200, HEADERS, BODY] }
