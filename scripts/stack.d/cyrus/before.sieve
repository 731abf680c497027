# The Sieve script every Cyrus seed of the dx test stack gets when its INBOX is created
# (autocreate_sieve_script): the same filing as Dovecot's global before.sieve. Files a message
# into INBOX.Junk when the test header X-DX-Junk: yes is present, or when rspamd's verdict
# headers (added on the last SMTP hop) say it is spam. Else: INBOX.
require ["fileinto"];

if anyof (header :is "X-DX-Junk" "yes",
          header :is "X-Spam" "yes",
          header :matches "X-Spam-Status" "yes*",
          header :is "X-Rspamd-Action" ["add header", "rewrite subject", "reject"]) {
  fileinto "INBOX.Junk";
  stop;
}
