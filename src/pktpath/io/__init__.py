"""The only filesystem code: snapshot directories and tarballs."""
