"""Operations tools, run against a deployed stack (AWS credentials and the stack's outputs).

redrive.py  ``python -m devtools redrive``: re-invoke the events kept in a stage's failure queue
"""
