# Global sieve_before script of the dx test stack (precompiled with sievec at `stack up`).
# Files a message into Junk when the test header X-DX-Junk: yes is present, or when
# rspamd's verdict headers (added on the last SMTP hop) say it is spam. Else: INBOX.
require ["fileinto", "mailbox"];

if anyof (header :is "X-DX-Junk" "yes",
          header :is "X-Spam" "yes",
          header :matches "X-Spam-Status" "yes*",
          header :is "X-Rspamd-Action" ["add header", "rewrite subject", "reject"]) {
  fileinto :create "Junk";
  stop;
}
