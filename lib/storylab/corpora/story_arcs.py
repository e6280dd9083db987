"""The twelve story arcs, and `story`: one introduction followed by one arc.

Each arc is a function of a writer `w` (see `story_grammar`): three paragraphs of a small
plot (a lost toy, a new friend, a storm, ...) that reuse the cast bound by the
introduction, then a last paragraph with a lesson. Choices are made only through
`w.say` / `w.say_one` / `narrate` / `w.branch`, so every story can be parsed back.
"""

from __future__ import annotations

from storylab.corpora.story_grammar import Options, one_of
from storylab.corpora.story_options import *  # noqa: F403 - the option lists are this module's vocabulary
from storylab.corpora.story_pieces import (ending, feels, introduction, little_moment, narrate, opening_time,
                                           weather)


def lost_and_found(w) -> None:
    w.paragraph()
    narrate(w, ("{time}, {hero} could not find {his} {toy} anywhere in the {room}.",
                "{time}, {hero} wanted to {act} with {his} {toy}, but it was gone.",
                "{time}, {hero} {looked} everywhere for {his} {colour} {toy}.",
                "{time}, {hero} went to the {room} to get {his} {toy}, but it was not there."), time=TIMES, room=ROOMS)
    narrate(w, ('"Where is my {toy}?" {he} {asked} {how}.', '"Oh no! My {toy} is lost!" {said} {hero}.',
                '"Has anyone seen my {toy}?" {he} {asked}.'))
    feels(w, "bad")
    w.paragraph()
    v = w.say("{He} {looked} {how} under the {spot}.", spot=FURNITURE)
    narrate(w, ("Then {he} {looked} behind the {spot2}.", "{He} {looked} next to the {spot2} too.",
                "{He} even {looked} inside the {spot2}."), spot2=FURNITURE.without(v["spot"]))
    narrate(w, ("But the {toy} was not there.", "The {toy} was nowhere to be found.",
                "{He} could not see it in the {room} or in the {room2}.", "It was not there either."),
                room=ROOMS, room2=lambda v: ROOMS.without(v["room"]))
    little_moment(w)
    w.paragraph()
    w.branch((_pet_finds, _grown_up_finds) if "pet" in w.ctx else (_grown_up_finds,))
    narrate(w, ("{hero} hugged {his} {toy} and {laughed}.", "{hero} held the {toy} close and {laughed}.",
                "{hero} was {very} {good} to have {his} {toy} back.",
                "{hero} danced around the {room} with {his} {toy}."),
                room=ROOMS)
    ending(w, "careful")


def _pet_finds(w) -> None:
    w.say("Just then, {pet} {came} in with something in its mouth. It was the {toy}!")
    w.say("It had been {where} the {spot} all along.", where=one_of("by", "under", "behind", "inside", "next to"),
          spot=FURNITURE)
    narrate(w, ('"Good {pet}!" {said} {hero}.', '"Thank you, {pet}!" {said} {hero}.',
                '"{pet}, you found it!" {said} {hero}.'))


def _grown_up_finds(w) -> None:
    w.say('Then {his} {rel} {came} over to help. "Let us look in the {room} together," {said} {Rel}.', room=ROOMS)
    narrate(w, ("And there it was! The {toy} was lying {where} the {spot}.",
                "They {looked} and {looked}, and at last they found the {toy} {where} the {spot}.",
                "There, under a pile of {stuff}, was the {toy}!",
                '"{exclaim}, there it is!" {said} {Rel}.'),
                where=one_of("by", "under", "behind", "inside", "next to"), spot=FURNITURE,
                stuff=one_of("leaves", "clothes", "papers", "blankets", "boxes", "towels", "shoes", "pillows", "toys"))


def new_friend(w) -> None:
    w.paragraph()
    opening_time(w, "{time}, {hero} {came} to the {place} with {his} {rel}.", place=PLACES)
    weather(w)
    v = narrate(w, ("There {he} {saw} a {fkind} sitting all alone by the {spot}.",
                    "Near the {spot}, {he} {saw} a {fkind} {doing}."),
                    fkind=KIND, spot=OUTDOOR_SPOTS,
                    doing=one_of("sitting alone", "standing alone", "looking sad", "crying softly", "kicking a stone"))
    kind = v["fkind"]
    narrate(w, ("The {fkind} looked {bad}.", "The {fkind} did not have anyone to play with.",
                "Nobody was playing with the {fkind}.", "The {fkind} was holding {a_toy} and looking at the ground."),
                fkind=kind, a_toy=A_TOYS)
    w.paragraph()
    narrate(w, ('{hero} {came} over and said, "Hi! I am {hero}. What is your name?"',
                '{hero} {came} up to the {fkind} and said, "Hello! My name is {hero}. What is yours?"'), fkind=kind)
    v = narrate(w, ('"My name is {friend}," said the {fkind} {how}.', '"I am {friend}," {said} the {fkind} {how}.'),
                    fkind=kind, friend=new_names(kind, w.ctx["hero"], w.ctx["friend"]))
    bind_friend(w, v["friend"])
    narrate(w, ('"Do you want to play with me?" {asked} {hero}.', '"Can I play with you?" {asked} {hero}.',
                '"Would you like to {act} with me?" {asked} {hero}.', '"Do you like {act_ing}?" {asked} {hero}.'))
    narrate(w, ("{friend} {laughed} and said yes.", "{friend} nodded and jumped up.",
                '"Yes, please!" {said} {friend}.', '"I would love to!" {said} {friend}.'))
    little_moment(w)
    narrate(w, ("They played with {hero}'s {toy} all afternoon.", "They {act_past} together until the sun went down.",
                "They played {game} and {act_past} and laughed a lot.", "They played {game} by the {spot}."),
                game=GAMES, spot=OUTDOOR_SPOTS)
    w.paragraph()
    narrate(w, ('When it was time to go home, {friend} said, "Can we play again tomorrow?"',
                'Before {fhe} left, {friend} said, "You are my best friend, {hero}."',
                'At the end of the day, {friend} said, "Thank you for playing with me, {hero}."'))
    narrate(w, ('"Yes!" {said} {hero}, and {he} felt {good}.', "{hero} gave {friend} {a_hug}.",
                '"See you tomorrow, {friend}!" {said} {hero}.'))
    ending(w, "friends")


def fear_overcome(w) -> None:
    w.paragraph()
    v = narrate(w, ("{hero} was afraid of {fear}.", "There was one thing {hero} did not like: {fear}.",
                    "More than anything, {hero} was scared of {fear}."), fear=FEARS)
    fear = v["fear"]
    narrate(w, ("Whenever {he} thought about it, {his} knees felt {weak}.",
                "It made {him} feel {bad} and {little}.",
                "{He} always hid behind {his} {rel} when it came near.",
                "Just thinking about it made {his} tummy feel {weak}."),
                weak=one_of("wobbly", "weak", "shaky", "funny", "tight", "like jelly"))
    w.paragraph()
    opening_time(w, '{time}, {his} {rel} said, "{hero}, let us face the {thing} together."', thing=fear[1])
    weather(w)
    narrate(w, ("{hero} took a {deep} breath.", "{hero} held {his} {toy} {very} tight.",
                "{hero} counted to {number} {very} slowly.", "{hero} held {his} {rel}'s hand."),
                number=one_of("three", "five", "ten", "twenty"))
    narrate(w, ("Step by step, {he} {came} closer.", "{He} closed {his} eyes and tried.",
                "{He} moved {how}, one step at a time."))
    little_moment(w)
    w.paragraph()
    narrate(w, ("It was not so scary after all!", "To {his} surprise, it was fun!",
                "Soon {he} was {laughed_ing} instead of shaking.", "It was much smaller than {he} had thought."))
    narrate(w, ('"I did it!" {said} {hero}.', '"I am not scared anymore!" {said} {hero}.',
                '"Look at me!" {hero} called to {his} {rel}.', '"{exclaim}! That was easy!" {said} {hero}.'))
    feels(w, "good")
    ending(w, "brave")


def sharing(w) -> None:
    w.paragraph()
    v = opening_time(w, "{time}, {hero}'s {rel} gave {him} {a_food} for a snack.", a_food=A_FOODS)
    food = v["a_food"]
    weather(w)
    narrate(w, ("It looked {very} {yummy}.", "{hero} could not wait to eat it.", "It smelled {yummy}."),
                yummy=one_of("yummy", "tasty", "good", "sweet", "delicious"))
    w.say("Just then, {his} friend {friend} {came} over to play.")
    narrate(w, ('{friend} looked at the {food} and said, "That looks so good!"',
                '"Can I have some {food}?" {asked} {friend}.'), food=food)
    w.paragraph()
    narrate(w, ('"It is mine," {said} {hero}, and {he} held it close.',
                "At first, {hero} did not want to share.",
                "{hero} turned away and took a {big} bite.", '"No," {said} {hero}. "It is all for me."'))
    narrate(w, ("{friend} looked {bad} and sat down on the {seat}.", "{friend} felt {bad} and {came} away.",
                "{friend}'s face became {bad}."),
                seat=one_of("grass", "steps", "floor", "bench", "rug", "wall"))
    little_moment(w)
    w.paragraph()
    narrate(w, ("Then {hero} {slowly} remembered what {his} {rel} always said about sharing.",
                "{hero} {saw} {fhis} sad face and felt bad inside.",
                "{hero} thought about it for a moment."))
    narrate(w, ("{He} broke the {food} in two and gave half to {friend}.",
                '"Here, {friend}, you can have half," {said} {hero}.'), food=food)
    narrate(w, ("{friend} clapped {fhis} hands.", '"Thank you, {hero}!" {said} {friend}.',
                "The two friends ate together and {laughed}.", "They sat together and shared every bite."))
    feels(w, "good")
    ending(w, "sharing")


def birthday(w) -> None:
    w.paragraph()
    w.say("It was {hero}'s birthday, and {he} was {age} years old.", age=AGES)
    weather(w)
    narrate(w, ("{He} woke up early and {came} to {his} {rel}.", "{He} jumped out of bed with a {big} smile.",
                "{He} could not stop {laughed_ing}.", "{He} put on {his} {colour} party hat."), colour=COLOURS)
    narrate(w, ('"Happy birthday, {hero}!" {said} {his} {rel}.', '"Happy birthday, my {dear}!" {said} {Rel}.'),
                dear=one_of("dear", "sweetheart", "little one", "darling"))
    w.paragraph()
    w.say("In the afternoon, {his} best friend {friend} {came} to the party.")
    w.say("{friend} brought {gift} wrapped in {colour} paper.", gift=GIFTS, colour=COLOURS)
    w.say("{Rel} made {cake} with {count} candles on top.", cake=CAKES,
          count=one_of("lots of", "tiny", "bright", "pretty", "colorful"))
    narrate(w, ("They played {game} and sang songs.", "Everyone played {game} in the {room}."),
                game=GAMES, room=ROOMS)
    little_moment(w)
    w.paragraph()
    narrate(w, ("{hero} blew out the candles and made a wish.", "{hero} closed {his} eyes and made a {big} wish."))
    narrate(w, ("{He} wished that {friend} and {he} would be friends forever.",
                "{He} wished for another day just like this one.",
                "{He} wished that {his} {toy} could talk.", "{He} wished for {a_pet_kind} of {his} own."),
                a_pet_kind=A_PET_KINDS)
    feels(w, "good")
    ending(w, "friends")


def storm(w) -> None:
    w.paragraph()
    opening_time(w, "{time}, {hero} was {act_ing} in the {place}.",
                 place=one_of("garden", "yard", "park", "field", "meadow"))
    w.say("Suddenly, {weather}.", weather=WEATHER)
    feels(w, "bad")
    narrate(w, ('"Come inside, {hero}! Quick!" {said} {his} {rel}.', '"{hero}, it is time to come in!" {said} {Rel}.'))
    w.paragraph()
    w.say("{sound}! went the thunder.", sound=STORM_SOUNDS)
    if "pet" in w.ctx:
        narrate(w, ("{pet} was so scared that it hid under the {spot}.", "{pet} shook and hid behind the {spot}."),
                    spot=FURNITURE)
    else:
        narrate(w, ("The lights went out and the house was dark.", "The windows rattled and the door shook."))
    narrate(w, ('{hero} was a little {bad} too, but {he} said, "Do not worry. I am here."',
                "{hero} wrapped a blanket around {himself} and sang {a_song} song.",
                "{hero} hugged {his} {toy} and waited.", "{hero} and {his} {rel} read a book by {light}."),
                a_song=A_SONGS, light=one_of("candlelight", "the fire", "a little lamp", "a flashlight"))
    little_moment(w)
    w.paragraph()
    narrate(w, ("Soon the storm passed and the sun came out.", "After a while, the rain stopped.",
                "By morning, the storm was gone."))
    narrate(w, ("There was a {big} rainbow over the {place}.", "Everything outside was wet and shiny.",
                "{hero} {came} outside to jump in the puddles.", "The birds began to sing again."), place=PLACES)
    ending(w, "brave")


HELP_PROBLEMS = Options(
    ["I dropped my glasses and I cannot find them", "my bags are too heavy to carry",
     "my kite is stuck in the tree", "my cat ran up the tree and will not come down",
     "I lost my way to the market", "my flowers need water but my back hurts",
     "I spilled all my apples on the road", "my little dog ran away",
     "my hat blew away in the wind", "I cannot reach the top shelf"],
    values=["found the glasses in the grass", "carried one of the bags all the way home",
            "climbed up and got the kite", "called the cat down with a soft voice",
            "showed the way to the market", "watered every flower in the garden",
            "picked up every apple", "found the little dog by the pond",
            "ran after the hat and caught it", "stood on a box and reached the shelf"])


def helping(w) -> None:
    w.paragraph()
    opening_time(w, "{time}, {hero} was walking to the {place} with {his} {toy}.", place=PLACES)
    weather(w)
    v = w.say("On the way, {he} {saw} {a_helper} who looked {bad}.", a_helper=A_HELPERS)
    helper = v["a_helper"]
    narrate(w, ('"What is wrong?" {asked} {hero}.', '"Are you okay?" {asked} {hero}.',
                '"Can I help you?" {asked} {hero}.'))
    w.paragraph()
    v = w.say('"Oh dear," said the {helper}, "{problem}."', helper=helper, problem=HELP_PROBLEMS)
    narrate(w, ('"I can help!" {said} {hero}.', "{hero} wanted to help right away.", '"Do not worry," {said} {hero}.'))
    w.say("{He} {fix}.", fix=v["problem"])
    little_moment(w)
    w.paragraph()
    narrate(w, ('The {helper} {laughed} and said, "Thank you, {hero}! You are {very} kind."',
                "The {helper} gave {hero} {a_hug} and {a_food}.",
                '"What {a_trait} child you are," said the {helper}.'), helper=helper, a_food=A_FOODS, a_trait=A_TRAITS)
    narrate(w, ("{hero} felt warm and {good} inside.", "{hero} {came} home to tell {his} {rel}.",
                "{hero} {came} all the way home, {laughed_ing}."))
    ending(w, "kind")


TRIP_PLACES = one_of("zoo", "beach", "farm", "forest", "mountains", "lake", "aquarium", "island", "jungle", "river")


def trip(w) -> None:
    w.paragraph()
    v = opening_time(w, "{time}, {hero} and {his} {rel} went on a trip to the {place}.", place=TRIP_PLACES)
    place = v["place"]
    narrate(w, ("{He} packed {his} {toy} and {a_food} in {his} bag.", "They went by {ride}.",
                "{hero} was so {excited} that {he} could not sit still."),
                a_food=A_FOODS, ride=one_of("car", "bus", "train", "boat", "bike"),
                excited=one_of("excited", "happy", "eager", "thrilled"))
    weather(w)
    w.paragraph()
    v = w.say("At the {place}, they {saw} {a_animal} {doing}.", place=place, a_animal=A_ANIMALS, doing=ANIMAL_ACTIONS)
    first = v["a_animal"]
    v = w.say("Then they {saw} {a_animal2} and {count} {birds}.", a_animal2=A_ANIMALS.without(first),
              count=one_of("two", "three", "four", "many"), birds=BIRDS_PLURAL)
    second = v["a_animal2"]
    narrate(w, ("{hero} liked the {favorite} best.", '"{exclaim}! Look at the {favorite}!" {said} {hero}.'),
                favorite=one_of(first, second))
    little_moment(w)
    w.paragraph()
    narrate(w, ("They ate {food} by the water.", "They had a picnic on {a_colour} blanket.",
                "They stopped to eat {food} under a {big} tree."), a_colour=A_COLOURS, food=FOODS_PLURAL)
    narrate(w, ("On the way home, {hero} fell asleep in the car.",
                "When they got home, {hero} told everyone about the {place}.",
                "{hero} drew a picture of the {place} that night."), place=place)
    ending(w, "together")


TOOLS = Options(["tape", "glue", "string", "a hammer", "a needle and thread", "a rubber band", "a screwdriver",
                 "a paper clip", "some wire"])


def broken_toy(w) -> None:
    w.paragraph()
    opening_time(w, "{time}, {hero} was playing with {his} {toy} near the {spot}.", spot=FURNITURE)
    narrate(w, ("It fell on the floor with a loud crash.", "{He} dropped it by accident, and it broke.",
                "Snap! The {toy} broke into {pieces} pieces.", "Crack! The {toy} hit the {spot} and broke."),
                pieces=one_of("two", "three", "many"), spot=FURNITURE)
    narrate(w, ("{hero} began to cry.", '"Oh no!" {said} {hero}.', '"My {toy}!" {said} {hero}.'))
    feels(w, "bad")
    w.paragraph()
    v = w.say("{He} tried to fix it with {tool}, but it did not work.", tool=TOOLS)
    narrate(w, ("{He} took the {toy} to {his} {rel}.", "{He} {came} to {his} {rel} in the {room}."), room=ROOMS)
    narrate(w, ('"Let us fix it together," {said} {Rel}.', '"Do not worry, we can fix it," {said} {Rel}.',
                '"I know what to do," {said} {Rel}.'))
    little_moment(w)
    w.paragraph()
    weather(w)
    w.say("They used {tool2} and worked {how}.", tool2=TOOLS.without(v["tool"]))
    narrate(w, ("Soon the {toy} was as good as new.", "At last, the {toy} was fixed!",
                "The {toy} looked even better than before."))
    narrate(w, ('"Thank you, {Rel}!" {said} {hero}.', "{hero} gave {his} {rel} {a_hug}."))
    ending(w, "together")


RULES = Options(
    ["play ball in the house", "go near the pond alone", "climb on the bookshelf",
     "eat cookies before dinner", "run with scissors", "open the gate", "touch the paint",
     "jump on the bed", "play in the mud in your new shoes", "feed the goat your sandwich"],
    values=["the ball hit a vase and it broke", "{He} slipped and got wet all over",
            "the books fell down with a bang", "{He} had a tummy ache at dinner",
            "{He} cut a hole in {his} shirt", "the {animal} ran out into the street",
            "{He} got paint all over {his} hands", "{He} fell off and bumped {his} head",
            "{His} new shoes were brown with mud", "the goat ate {his} sleeve too"])


def not_listening(w) -> None:
    w.paragraph()
    v = opening_time(w, '{time}, {hero}\'s {rel} said, "Please do not {rule}."', rule=RULES)
    consequence = v["rule"]
    weather(w)
    narrate(w, ('"Okay," {said} {hero}.', "{hero} nodded, but {he} was not really listening.",
                '"I will not," {said} {hero}, but {he} was thinking about {his} {toy}.'))
    w.paragraph()
    narrate(w, ("Later, {hero} forgot what {his} {rel} had said.", "But {hero} did not listen.",
                "Soon, {hero} wanted to try it anyway."))
    w.say("Oh no! " + consequence[0].upper() + consequence[1:] + ".",
          animal=one_of("dog", "cat", "goat", "sheep", "pony", "chickens"))
    feels(w, "bad")
    little_moment(w)
    w.paragraph()
    narrate(w, ('{He} {came} to {his} {rel} and said, "I am sorry."', "{hero} said sorry to {his} {rel}.",
                '"I should have listened," {said} {hero} {how}.'))
    narrate(w, ("{Rel} gave {him} {a_hug} and helped {him} clean up.", '"Thank you for saying sorry," {said} {Rel}.',
                '"Everyone makes mistakes," {said} {Rel} with a smile.'))
    ending(w, "listen")


def garden(w) -> None:
    w.paragraph()
    v = opening_time(w, "{time}, {hero}'s {giver} gave {him} a bag of {seed} seeds.",
                     giver=one_of("grandma", "grandpa", "teacher", "neighbor", "aunt", "uncle"), seed=SEEDS)
    grown = plural(v["seed"])
    weather(w)
    w.say("{He} planted them in a {bed} by the {where}.", bed=one_of("pot", "box", "sunny spot", "little bed", "row"),
          where=one_of("window", "fence", "door", "wall", "gate", "path"))
    w.paragraph()
    narrate(w, ("Every day, {he} gave the seeds water.", "Each morning, {he} watered them with a {little} can.",
                "{He} checked on them every day after {act_ing}."))
    narrate(w, ("But nothing grew.", "But the dirt stayed brown and bare.", "But there was nothing to see."))
    narrate(w, ('"When will they grow?" {asked} {hero}.', "{hero} felt {bad} and a little cross."))
    w.say('"Be patient," {said} {his} {rel}. "Good things take time."')
    little_moment(w)
    w.paragraph()
    w.say("After {many} days, a tiny green {sprout} came up.", many=one_of("many", "ten", "a few", "seven"),
          sprout=one_of("sprout", "shoot", "leaf"))
    w.say("Soon the {bed} was full of {grown}.", bed=one_of("garden", "window box", "yard"), grown=grown)
    narrate(w, ("{hero} jumped for joy.", "{hero} showed them to {his} {toy} and {laughed}.",
                '"{exclaim}! They grew!" {said} {hero}.'))
    ending(w, "patience")


def baking(w) -> None:
    w.paragraph()
    v = opening_time(w, "{time}, {hero} and {his} {rel} decided to bake {baked}.", baked=BAKED)
    _, the_baked, was, piece = v["baked"]
    weather(w)
    v = w.say("They got out the {ing}, the {ing2} and a {big} bowl.", ing=INGREDIENTS,
              ing2=lambda vals: INGREDIENTS.without(vals["ing"]))
    narrate(w, ('"Can I stir?" {asked} {hero}.', '"Can I help?" {asked} {hero}.', "{hero} put on a {colour} apron."),
                colour=COLOURS)
    w.paragraph()
    narrate(w, ("{hero} stirred and stirred.", "{hero} mixed everything {how}."))
    narrate(w, ("Oops! Some {ing} fell on the floor.", "Oops! {He} got {ing} on {his} nose."),
                ing=one_of(v["ing"], v["ing2"]))
    narrate(w, ("They both {laughed}.", "{Rel} {laughed} and helped {him} clean up."))
    little_moment(w)
    narrate(w, ("Then they put it in the oven and waited.", "The kitchen began to smell {nice}."),
                nice=one_of("sweet", "warm", "wonderful", "lovely"))
    w.paragraph()
    w.say("At last, the {baked} {was} ready.", baked=the_baked, was=was)
    a_piece = f"{article(piece)} {piece}"
    if "pet" in w.ctx:
        narrate(w, ("{hero} ate {a_piece} and gave a tiny bit to {pet}.",
                    "{hero} ate {a_piece} with a glass of {drink}."),
                    a_piece=a_piece, drink=DRINKS)
    else:
        w.say("{hero} ate {a_piece} with a glass of {drink}.", a_piece=a_piece, drink=DRINKS)
    ending(w, "together")


STORY_ARCS = (lost_and_found, new_friend, fear_overcome, sharing, birthday, storm, helping, trip,
              broken_toy, not_listening, garden, baking)


# Choices any sentence may use without passing them in: how people speak and move, feelings.
COMMON = dict(said=SAID, asked=ASKED, good=GOOD, bad=BAD, how=ADVERBS, slowly=ADVERBS, exclaim=EXCLAIMS,
              came=CAME, laughed=LAUGHED, laughed_ing=LAUGHED_ING, a_hug=A_HUG, deep=DEEP, very=VERY, big=BIG,
              little=LITTLE, saw=SAW, looked=LOOKED)


def _returning_name(arc):
    def run(w) -> str:
        arc(w)
        return arc.__name__
    run.__name__ = arc.__name__  # the path's name in a recorded parse
    return run


_NAMED_ARCS = tuple(_returning_name(arc) for arc in STORY_ARCS)


def story(w) -> str:
    """One whole story: introduction, then one arc (which ends the story). Returns the arc's name."""
    w.bind(**COMMON)
    introduction(w)
    return w.branch(_NAMED_ARCS)
