-- Each node reads which users changed since its last look (crate::auth::cache):
-- revoked tokens have their own index already; users' changes need one.
CREATE INDEX users_updated_at ON users (updated_at);
