-- Failed logins per account and per client address, for time-bound lockouts.
CREATE TABLE login_throttle (
    key          text PRIMARY KEY,
    failures     integer NOT NULL DEFAULT 0,
    last_failure timestamptz NOT NULL DEFAULT now(),
    locked_until timestamptz
);
