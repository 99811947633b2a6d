-- Sign-in sessions of the web pages (web/sign-in). The browser holds a random token; the row is
-- keyed by its SHA-256, so a copy of the table signs nobody in. Logout (or an operator) sets
-- revoked_at, and a revoked or expired row no longer names anyone.

-- CreateTable
CREATE TABLE "web_sessions" (
    "id" TEXT NOT NULL,
    "forge" TEXT NOT NULL,
    "forge_url" TEXT NOT NULL,
    "login" TEXT NOT NULL,
    "access_token" TEXT NOT NULL,
    "csrf_secret" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "expires_at" TIMESTAMPTZ(3) NOT NULL,
    "revoked_at" TIMESTAMPTZ(3),

    CONSTRAINT "web_sessions_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "web_sessions_forge_login_idx" ON "web_sessions"("forge", "login");
